"""`tollway mock`: MockServer-compatible mock upstreams (expectations JSON), for examples/tests."""
