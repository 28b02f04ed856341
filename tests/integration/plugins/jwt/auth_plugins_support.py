"""Shared by the jwt and key-auth integration tests: an in-process gateway (the data-plane
test helpers), a recording upstream, a raw client, and token/key material builders."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dataplane"))

from dataplane_helpers import (
    Gateway,
    LoopThread,
    RawClient,
    Response,
    Upstream,
    echo_path,
)

__all__ = ["AuthEnv", "auth_env", "make_doc"]


def make_doc(upstream_url: str, plugins: list[dict[str, Any]],
             consumers: list[dict[str, Any]] | None = None,
             routes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "_format_version": "3.0",
        "services": [{"name": "svc", "url": upstream_url,
                      "routes": routes or [{"name": "r", "paths": ["/"]}]}],
        "plugins": plugins,
        "consumers": consumers or [],
    }


class AuthEnv:
    def __init__(self, lt: LoopThread) -> None:
        self.lt = lt
        self.upstream = Upstream(lt, echo_path)
        self.gateways: list[Gateway] = []
        self.clients: list[RawClient] = []
        self.gw: Gateway | None = None

    def start(self, plugins: list[dict[str, Any]], consumers: list[dict[str, Any]] | None = None,
              routes: list[dict[str, Any]] | None = None) -> Gateway:
        gw = Gateway(make_doc(self.upstream.url, plugins, consumers, routes), {})
        self.gateways.append(gw)
        self.gw = gw
        return gw

    def swap(self, plugins: list[dict[str, Any]], consumers: list[dict[str, Any]] | None = None
             ) -> None:
        assert self.gw is not None
        self.gw.swap(make_doc(self.upstream.url, plugins, consumers))

    def request(self, target: str = "/", headers: list[tuple[str, str]] | None = None,
                method: str = "GET") -> Response:
        assert self.gw is not None
        client = RawClient(self.gw.port)
        self.clients.append(client)
        return client.request(method, target, headers)

    def upstream_header(self, name: str) -> str | None:
        """The header as the upstream received it on the last proxied request."""
        return self.upstream.requests[-1].header(name)

    def close(self) -> None:
        for c in self.clients:
            c.close()
        for gw in self.gateways:
            gw.close()
        self.upstream.close()


@pytest.fixture
def auth_env() -> Iterator[AuthEnv]:
    lt = LoopThread(use_uvloop=False, name="auth-upstreams")
    env = AuthEnv(lt)
    try:
        yield env
    finally:
        env.close()
        lt.stop()


