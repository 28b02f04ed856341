"""Fixtures shared by the cors, correlation-id, ip-restriction and request-size-limiting
integration tests: an in-process gateway (the data-plane helpers, imported from their
directory), a recording raw-socket upstream and raw clients. Each of those directories'
conftest star-imports this module (its name is unique on purpose)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dataplane"))

from dataplane_helpers import Gateway, LoopThread, RawClient, Upstream, echo_path

__all__ = ["edge_client", "edge_gateway", "edge_upstream", "edge_upstreams",
           "service"]

def service(url: str, routes: list[dict[str, Any]] | None = None,
            plugins: list[dict[str, Any]] | None = None, **svc: Any) -> dict[str, Any]:
    """A one-service document; `plugins` are global."""
    doc: dict[str, Any] = {
        "_format_version": "3.0",
        "services": [{"name": "svc", "url": url, **svc,
                      "routes": routes if routes is not None else [{"name": "r",
                                                                    "paths": ["/"]}]}],
    }
    if plugins:
        doc["plugins"] = plugins
    return doc


@pytest.fixture
def edge_upstreams() -> Iterator[Callable[..., Upstream]]:
    lt = LoopThread(use_uvloop=False, name="edge-upstreams")
    made: list[Upstream] = []

    def make(behaviour: Any = echo_path) -> Upstream:
        up = Upstream(lt, behaviour)
        made.append(up)
        return up

    yield make
    for up in made:
        up.close()
    lt.stop()


@pytest.fixture
def edge_upstream(edge_upstreams: Callable[..., Upstream]) -> Upstream:
    return edge_upstreams()


@pytest.fixture
def edge_gateway() -> Iterator[Callable[..., Gateway]]:
    made: list[Gateway] = []

    def make(document: dict[str, Any], **overrides: str) -> Gateway:
        gw = Gateway(document, overrides)
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.close()


@pytest.fixture
def edge_client() -> Iterator[Callable[..., RawClient]]:
    made: list[RawClient] = []

    def make(port: int, timeout: float = 5.0) -> RawClient:
        c = RawClient(port, timeout)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
