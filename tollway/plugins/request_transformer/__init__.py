"""request-transformer: rewrite the request before it goes upstream (Kong §3.10)."""
