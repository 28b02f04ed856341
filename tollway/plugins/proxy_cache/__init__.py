"""proxy-cache: cache upstream responses in worker memory (Kong §3.9)."""
