"""Support for the Admin API suite: a real `tollway start` per database kind.

`DB_KINDS` lists the stores the write tests run against: the same suite on the embedded
SQLite store and on PostgreSQL (a database of its own per module)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "node"))
from node_support import Node

DB_KINDS = ["sqlite", "postgres"]


def start_node(workdir: Path, kind: str, env: dict[str, str | None] | None = None,
               config: Any = None, token: str | None = None) -> Node:
    """A started node; `token` is what readiness polling sends when the node needs one."""
    node_env: dict[str, str | None] = {"TOLLWAY_DATABASE": kind}
    node_env.update(env or {})
    node = Node(workdir, env=node_env, config=config, workers=1)
    if token is None:
        return node.start()
    node.spawn()
    assert node.proc is not None
    headers = {"authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if node.proc.poll() is not None:
            raise AssertionError(f"tollway start exited:\n{node.stderr()}")
        try:
            if httpx.get(node.admin_url + "/status", headers=headers,
                         timeout=1.0).status_code == 200:
                return node
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    node.stop()
    raise AssertionError(f"node not ready:\n{node.stderr()}")


class Admin:
    """A thin client: `admin.post("/services", json=...)` → httpx.Response."""

    def __init__(self, node: Node, kind: str) -> None:
        self.node = node
        self.kind = kind
        self.client = httpx.Client(base_url=node.admin_url, timeout=15.0)

    def __getattr__(self, method: str) -> Any:
        if method in ("get", "post", "put", "patch", "delete", "request"):
            return getattr(self.client, method)
        raise AttributeError(method)

    def revision(self) -> int | None:
        value = self.client.get("/status").json().get("configuration_revision")
        return int(value) if value is not None else None

    def close(self) -> None:
        self.client.close()
