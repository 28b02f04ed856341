"""request-size-limiting: reject request bodies over a configured size."""
