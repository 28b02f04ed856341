"""cors: CORS preflights answered by the gateway and CORS headers on every response."""
