"""Fixtures for the store tests: every test taking `backend_settings` runs on SQLite and on
PostgreSQL (a database created for the session; skipped when the server is unreachable,
a failure under CI=true)."""

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

from node_support import Node, Upstream  # noqa: E402
from store_support import BACKENDS, PgDatabase, backend_env, load_settings  # noqa: E402

from tollway.controlplane.store import Store, migrate  # noqa: E402
from tollway.settings import Settings  # noqa: E402


@pytest.fixture(scope="session")
def pg_database() -> Iterator[PgDatabase]:
    db = PgDatabase()
    yield db
    db.drop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend_env_vars(backend: str, request: pytest.FixtureRequest,
                     tmp_path: Path) -> dict[str, str]:
    """TOLLWAY_* variables for the backend, on an empty (un-migrated) database."""
    pg = request.getfixturevalue("pg_database") if backend == "postgres" else None
    env = backend_env(backend, pg, tmp_path / "prefix")
    if backend == "postgres":
        store = Store.open(load_settings(env))
        try:
            migrate.reset(store.engine)  # the session database is shared by the tests
        finally:
            store.close()
    return env


@pytest.fixture
def backend_settings(backend_env_vars: dict[str, str]) -> Settings:
    return load_settings(backend_env_vars)


@pytest.fixture
def store(backend_settings: Settings) -> Iterator[Store]:
    """A migrated store on the backend."""
    s = Store.open(backend_settings)
    migrate.upgrade(s.engine)
    yield s
    s.close()


@pytest.fixture(scope="module")
def store_upstream() -> Iterator[Upstream]:
    up = Upstream("store-up")
    yield up
    up.stop()


@pytest.fixture
def store_nodes(tmp_path: Path) -> Iterator[Callable[..., Node]]:
    """`store_nodes(name="node", start=True, **Node kwargs)`: `tollway start` subprocesses,
    stopped at teardown."""
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
