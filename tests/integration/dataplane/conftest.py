"""Fixtures for the data-plane integration tests: an in-process gateway (a `Worker` on a
uvloop thread) and scriptable raw-socket upstreams on another loop thread (defined in
`dataplane_fixtures`, shared with the plugin tests)."""

from __future__ import annotations

from dataplane_fixtures import (  # noqa: F401
    make_client,
    make_gateway,
    make_upstream,
    upstream,
    upstream_loop,
)
