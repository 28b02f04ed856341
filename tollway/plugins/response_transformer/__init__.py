"""response-transformer: rewrite response headers and JSON bodies (Kong §3.11)."""
