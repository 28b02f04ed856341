"""Fixtures for the prometheus tests: in-process gateways (the data-plane helpers) and real
nodes (the node helpers), plus two tiny test-only plugins that authenticate a consumer and
play the rate-limiting plugin's 429."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

_INTEGRATION = Path(__file__).resolve().parents[2]
for _d in (_INTEGRATION / "dataplane", _INTEGRATION / "node"):
    if str(_d) not in sys.path:
        sys.path.insert(0, str(_d))

from dataplane_helpers import Gateway, Upstream, echo_path, upstream_thread  # noqa: E402
from node_support import Node  # noqa: E402
from node_support import Upstream as NodeUpstream  # noqa: E402

from tollway.config.schema import Record  # noqa: E402
from tollway.plugins import registry  # noqa: E402
from tollway.plugins.base import Plugin  # noqa: E402


class FakeAuth(Plugin):
    """Authenticates the consumer named by `X-User` (no credential check)."""

    name = "test-prom-auth"
    priority = 1250
    config_schema: ClassVar[Record] = Record(fields={})

    def access(self, req: Any) -> None:
        user = req.get_header("x-user")
        if user:
            req.authenticate({"id": f"id-{user}", "username": user, "custom_id": None}, None)


class FakeLimit(Plugin):
    """Answers 429 and flags the request as rate-limiting does when `X-Limit` is sent."""

    name = "test-prom-limit"
    priority = 910
    config_schema: ClassVar[Record] = Record(fields={})

    def access(self, req: Any) -> None:
        if req.get_header("x-limit"):
            req.ctx["rate_limit_exceeded"] = True
            req.exit(429, {"message": "API rate limit exceeded"})


@pytest.fixture
def fake_plugins() -> Iterator[None]:
    registry.register(FakeAuth)
    registry.register(FakeLimit)
    yield
    registry.unregister(FakeAuth.name)
    registry.unregister(FakeLimit.name)


@pytest.fixture
def prom_upstream() -> Iterator[Upstream]:
    with upstream_thread(echo_path, "prom-upstreams") as up:
        yield up


@pytest.fixture
def prom_gateway() -> Iterator[Callable[..., Gateway]]:
    made: list[Gateway] = []

    def make(document: dict[str, Any], **overrides: str) -> Gateway:
        gw = Gateway(document, overrides)
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.close()


@pytest.fixture(scope="module")
def prom_node_upstream() -> Iterator[NodeUpstream]:
    up = NodeUpstream("prom-up")
    yield up
    up.stop()


@pytest.fixture
def prom_node(tmp_path: Path) -> Iterator[Callable[..., Node]]:
    nodes: list[Node] = []

    def make(**kwargs: Any) -> Node:
        node = Node(tmp_path / f"node-{len(nodes)}", **kwargs)
        nodes.append(node)
        return node.start()

    yield make
    for node in nodes:
        node.stop()
