"""correlation-id: an id on every request, sent upstream and optionally echoed back."""
