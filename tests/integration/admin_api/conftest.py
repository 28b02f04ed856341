from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from admin_api_support import DB_KINDS, Admin, start_node  # noqa: E402


@pytest.fixture(scope="module", params=DB_KINDS)
def admin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Admin]:
    """A node with a database (one per module and database kind), empty at start."""
    workdir: Path = tmp_path_factory.mktemp(f"admin-{request.param}")
    node = start_node(workdir, request.param)
    client = Admin(node, request.param)
    try:
        yield client
    finally:
        client.close()
        node.stop()
