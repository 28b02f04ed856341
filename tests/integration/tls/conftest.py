"""Fixtures for the TLS tests: in-process gateways with a TLS listener (the data-plane
tests' `Gateway`), scriptable upstreams, a test CA."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).resolve().parent
for extra in (_HERE, _HERE.parent / "dataplane", _HERE.parent / "node"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from dataplane_helpers import Behaviour, Gateway, LoopThread, Upstream, echo_path  # noqa: E402
from tls_certs import CA  # noqa: E402


@pytest.fixture
def ca() -> CA:
    return CA()


@pytest.fixture
def tls_upstream_loop() -> Iterator[LoopThread]:
    lt = LoopThread(use_uvloop=False, name="tls-upstreams")
    yield lt
    lt.stop()


@pytest.fixture
def make_plain_upstream(tls_upstream_loop: LoopThread) -> Iterator[Callable[..., Upstream]]:
    made: list[Upstream] = []

    def make(behaviour: Behaviour = echo_path) -> Upstream:
        up = Upstream(tls_upstream_loop, behaviour)
        made.append(up)
        return up

    yield make
    for up in made:
        up.close()


class TLSGateway:
    """A Gateway whose listeners are plain http (`http_port`) and TLS (`tls_port`)."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        ports = gw.worker.ports()
        self.http_port, self.tls_port = ports[0], ports[1]
        self.http_url = f"http://127.0.0.1:{self.http_port}"
        self.tls_url = f"https://127.0.0.1:{self.tls_port}"
        self.state = gw.state

    def swap(self, document: dict[str, Any]) -> None:
        self.gw.swap(document)


@pytest.fixture
def make_tls_gateway(tmp_path: Path) -> Iterator[Callable[..., TLSGateway]]:
    made: list[Gateway] = []

    def make(document: dict[str, Any], http2: bool = True, **overrides: str) -> TLSGateway:
        values = {"proxy_listen": "127.0.0.1:0, 127.0.0.1:0 " + ("http2 ssl" if http2
                                                                  else "ssl"),
                  "prefix": str(tmp_path / "prefix")}
        values.update(overrides)
        gw = Gateway(document, values)
        made.append(gw)
        return TLSGateway(gw)

    yield make
    for gw in made:
        gw.close()
