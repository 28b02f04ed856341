"""In-process gateways and scriptable upstreams from the data-plane test helpers."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_DATAPLANE = Path(__file__).resolve().parents[2] / "dataplane"
if str(_DATAPLANE) not in sys.path:
    sys.path.insert(0, str(_DATAPLANE))

from dataplane_helpers import Gateway, LoopThread, RawClient, Upstream, echo_path  # noqa: E402


@pytest.fixture
def upstream_loop() -> Iterator[LoopThread]:
    lt = LoopThread(use_uvloop=False, name="upstreams")
    yield lt
    lt.stop()


@pytest.fixture
def make_upstream(upstream_loop: LoopThread) -> Iterator[Callable[..., Upstream]]:
    made: list[Upstream] = []

    def make(behaviour: Any = echo_path) -> Upstream:
        up = Upstream(upstream_loop, behaviour)
        made.append(up)
        return up

    yield make
    for up in made:
        up.close()


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
