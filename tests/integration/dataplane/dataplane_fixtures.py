"""Fixtures for in-process gateway tests: an in-process gateway (a `Worker` on a uvloop
thread) and scriptable raw-socket upstreams on another loop thread. The data-plane conftest
and the plugin conftests that need the same fixtures import them from here (put this
directory on `sys.path` first)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dataplane_helpers import (
    Behaviour,
    Gateway,
    LoopThread,
    RawClient,
    Upstream,
    echo_path,
)


@pytest.fixture
def upstream_loop() -> Iterator[LoopThread]:
    lt = LoopThread(use_uvloop=False, name="upstreams")
    yield lt
    lt.stop()


@pytest.fixture
def make_upstream(upstream_loop: LoopThread) -> Iterator[Callable[..., Upstream]]:
    made: list[Upstream] = []

    def make(behaviour: Behaviour = echo_path) -> Upstream:
        up = Upstream(upstream_loop, behaviour)
        made.append(up)
        return up

    yield make
    for up in made:
        up.close()


@pytest.fixture
def upstream(make_upstream: Callable[..., Upstream]) -> Upstream:
    return make_upstream()


@pytest.fixture
def make_gateway() -> Iterator[Callable[..., Gateway]]:
    made: list[Gateway] = []

    def make(document: dict[str, Any], **overrides: str) -> Gateway:
        gw = Gateway(document, overrides)
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.close()


@pytest.fixture
def make_client() -> Iterator[Callable[..., RawClient]]:
    made: list[RawClient] = []

    def make(port: int, timeout: float = 5.0) -> RawClient:
        c = RawClient(port, timeout)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
