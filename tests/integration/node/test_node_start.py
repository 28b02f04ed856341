"""`tollway start --config`: proxying, `GET /`, `GET /status`, `GET /config`."""

from __future__ import annotations

import yaml
from node_support import Node, Upstream, simple_config, wait_until

from tollway import __version__
from tollway.config.declarative import validate
from tollway.config.loader import load_file

KONG_SERVER_COUNTERS = {"connections_accepted", "connections_active", "connections_handled",
                        "connections_reading", "connections_waiting", "connections_writing",
                        "total_requests"}


def test_proxied_request_reaches_the_upstream(node: Node, up1: Upstream) -> None:
    for r in node.get_many("/a/x?q=1", 6):
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["upstream"] == "up1"
        # strip_path (default true): /a/x -> /x, query kept
        assert body["path"] == "/x?q=1"
    r = node.get("/nowhere")
    assert r.status_code == 404
    assert r.json() == {"message": "no Route matched with those values",
                        "request_id": r.headers["x-tollway-request-id"]}


def test_root_reports_version_and_pids(node: Node) -> None:
    r = node.admin("GET", "/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["version"] == __version__
    assert body["pids"]["master"] == node.proc.pid  # type: ignore[union-attr]
    assert sorted(body["pids"]["workers"]) == sorted(node.worker_pids())
    assert len(body["pids"]["workers"]) == 2


def test_status_hash_matches_config_and_workers(node: Node) -> None:
    assert node.config_path is not None
    expected = load_file(node.config_path).hash
    status = node.status()
    assert status["configuration_hash"] == expected
    assert set(status["server"]) >= KONG_SERVER_COUNTERS
    assert all(isinstance(v, int) for v in status["server"].values())
    workers = status["workers"]
    assert len(workers) == 2
    assert all(w["alive"] for w in workers)

    def workers_report_hash() -> bool:
        ws = node.status()["workers"]
        return all(w["configuration_hash"] == expected for w in ws)

    wait_until(workers_report_hash, 5, what="workers to report the configuration hash")


def test_status_server_counters_count_requests(fresh_node: Node) -> None:
    for r in fresh_node.get_many("/a", 7):
        assert r.status_code == 200

    def counted() -> dict[str, int] | None:
        server: dict[str, int] = fresh_node.status()["server"]
        return server if server["total_requests"] >= 7 else None

    server = wait_until(counted, 5, what="server.total_requests >= 7")
    assert server["connections_accepted"] >= 7
    assert server["connections_handled"] >= 7
    assert server["connections_active"] >= 0


def test_get_config_round_trips(node: Node) -> None:
    assert node.config_path is not None
    original = load_file(node.config_path)
    r = node.admin("GET", "/config")
    assert r.status_code == 200
    text = r.json()["config"]
    assert isinstance(text, str)
    doc = yaml.safe_load(text)
    assert doc["_format_version"] == "3.0"
    again = validate(doc)
    assert again.hash == original.hash
    assert again.entities == original.entities


def test_get_config_after_post_returns_the_posted_config(node: Node,
                                                         up1: Upstream) -> None:
    doc = simple_config(up1.url, "/posted", "posted")
    assert node.post_config(doc).status_code == 201
    text = node.admin("GET", "/config").json()["config"]
    assert validate(yaml.safe_load(text)).hash == validate(doc).hash
