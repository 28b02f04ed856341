"""circuit-breaker: per-service (or per-route) circuit breaker with node-wide state."""
