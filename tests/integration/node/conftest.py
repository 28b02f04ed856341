"""Fixtures for the node integration tests: upstreams and `tollway start` subprocesses."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from node_support import Node, Upstream, simple_config  # noqa: E402


@pytest.fixture(scope="module")
def up1() -> Iterator[Upstream]:
    up = Upstream("up1")
    yield up
    up.stop()


@pytest.fixture(scope="module")
def up2() -> Iterator[Upstream]:
    up = Upstream("up2")
    yield up
    up.stop()


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator[Callable[..., Node]]:
    """`node_factory(name="node", start=True, **Node kwargs)`; every node is stopped (SIGTERM,
    then SIGKILL) at teardown."""
    nodes: list[Node] = []

    def make(name: str = "node", start: bool = True, **kwargs: Any) -> Node:
        node = Node(tmp_path / f"{name}-{len(nodes)}", **kwargs)
        nodes.append(node)
        if start:
            node.start()
        return node

    yield make
    for node in nodes:
        node.stop()


@pytest.fixture(scope="module")
def module_node(tmp_path_factory: pytest.TempPathFactory, up1: Upstream) -> Iterator[Node]:
    node = Node(tmp_path_factory.mktemp("node"), config=simple_config(up1.url)).start()
    yield node
    node.stop()


@pytest.fixture
def node(module_node: Node, up1: Upstream) -> Node:
    """A node (shared by the tests of one module) started with `--config` routing /a to
    `up1`; the config is reset to that before each test."""
    if module_node.proc is None or module_node.proc.poll() is not None:
        module_node.start()
    r = module_node.post_config(simple_config(up1.url))
    assert r.status_code == 201, r.text
    return module_node


@pytest.fixture
def fresh_node(node_factory: Callable[..., Node], up1: Upstream) -> Node:
    """A node of its own, started with `--config` routing /a to `up1`."""
    return node_factory(config=simple_config(up1.url))
