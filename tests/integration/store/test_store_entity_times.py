"""created_at / updated_at through the Admin API of running nodes, on SQLite and PostgreSQL:
stored with the revisions, so a restarted node and a second node on the same database
report the same times as the node that made the change."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import yaml
from node_support import Node, Upstream
from test_store_admin_revisions import started


def times_of(node: Node, path: str) -> tuple[int, int | None]:
    r = node.admin("GET", path)
    assert r.status_code == 200, r.text
    body = r.json()
    return body["created_at"], body.get("updated_at")


def test_times_survive_restarts_and_agree_across_nodes(
        store_nodes: Callable[..., Node], store_upstream: Upstream,
        backend_env_vars: dict[str, str]) -> None:
    node = started(store_nodes, backend_env_vars)
    r = node.admin("POST", "/services", json={"name": "svc", "url": store_upstream.url})
    assert r.status_code == 201, r.text
    svc: dict[str, Any] = r.json()
    created = svc["created_at"]
    assert svc["updated_at"] == created
    r = node.admin("POST", "/services/svc/routes", json={"name": "r", "paths": ["/a"]})
    assert r.status_code == 201, r.text
    route_times = (r.json()["created_at"], r.json()["updated_at"])

    time.sleep(1.1)  # the times are whole seconds
    r = node.admin("PATCH", "/services/svc", json={"read_timeout": 1234})
    assert r.status_code == 200, r.text
    assert r.json()["created_at"] == created and r.json()["updated_at"] > created
    patched = (created, r.json()["updated_at"])
    assert times_of(node, "/routes/r") == route_times  # not written: unchanged

    # a declarative load: an unchanged entity keeps its times, a new one is created now
    doc = yaml.safe_load(node.admin("GET", "/config").json()["config"])
    doc["consumers"] = [{"username": "alice"}]
    time.sleep(1.1)
    r = node.admin("POST", "/config", json=doc)
    assert r.status_code == 201, r.text
    assert times_of(node, "/services/svc") == patched
    alice_created = times_of(node, "/consumers/alice")[0]
    assert alice_created > patched[1]

    if backend_env_vars["TOLLWAY_DATABASE"] == "postgres":
        # a second node on the database, while the first runs: the same times
        other = started(store_nodes, backend_env_vars, name="other")
        assert times_of(other, "/services/svc") == patched
        assert times_of(other, "/consumers/alice")[0] == alice_created
        other.stop()
    assert node.stop() == 0
    again = started(store_nodes, backend_env_vars, name="again")
    assert times_of(again, "/services/svc") == patched
    assert times_of(again, "/routes/r") == route_times
    assert times_of(again, "/consumers/alice")[0] == alice_created
