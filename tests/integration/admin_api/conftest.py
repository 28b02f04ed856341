from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
for _extra in (_HERE, str(Path(_HERE).parent / "store")):
    if _extra not in sys.path:
        sys.path.insert(0, _extra)

from admin_api_support import DB_KINDS, Admin, start_node  # noqa: E402
from store_support import PgDatabase  # noqa: E402


@pytest.fixture(scope="module", params=DB_KINDS)
def admin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Admin]:
    """A node with a database (one per module and database kind), empty at start."""
    workdir: Path = tmp_path_factory.mktemp(f"admin-{request.param}")
    db = None
    env: dict[str, str | None] | None = None
    if request.param == "postgres":
        # A database of its own per module on the machine's PostgreSQL, bootstrapped the way
        # an operator does it (skip with the reason when unreachable; a failure in CI).
        db = PgDatabase()
        env = dict(db.env())
        subprocess.run([sys.executable, "-m", "tollway", "migrations", "bootstrap"],
                       env={**os.environ, **db.env()}, check=True, capture_output=True)
    node = start_node(workdir, request.param, env=env)
    client = Admin(node, request.param)
    try:
        yield client
    finally:
        client.close()
        node.stop()
        if db is not None:
            db.drop()
