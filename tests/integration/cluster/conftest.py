"""Fixtures for the cluster tests: a throwaway PostgreSQL server (stopped and restarted by
the outage test; never the machine's shared one) and `tollway start` nodes on it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).resolve().parent
for extra in (_HERE, _HERE.parent / "node"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from cluster_pg import ThrowawayPostgres  # noqa: E402
from node_support import Node, Upstream  # noqa: E402

from tollway import settings as settings_mod  # noqa: E402
from tollway.controlplane.store import Store, migrate  # noqa: E402


@pytest.fixture
def cluster_pg() -> Iterator[ThrowawayPostgres]:
    """A fresh, migrated server per test (tests stop it; they must not share one)."""
    pg = ThrowawayPostgres()
    try:
        pg.start()
        pg.wait_ready()
        store = Store.open(settings_mod.load(env=pg.env()))
        try:
            migrate.upgrade(store.engine)
        finally:
            store.close()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="module")
def cluster_upstream() -> Iterator[Upstream]:
    up = Upstream("cluster-up")
    yield up
    up.stop()


@pytest.fixture
def cluster_nodes(tmp_path: Path) -> Iterator[Callable[..., Node]]:
    nodes: list[Node] = []

    def make(name: str, env: dict[str, str], start: bool = True, **kwargs: Any) -> Node:
        node = Node(tmp_path / name, env=env, **kwargs)
        nodes.append(node)
        if start:
            node.start()
        return node

    yield make
    for node in nodes:
        node.stop()
