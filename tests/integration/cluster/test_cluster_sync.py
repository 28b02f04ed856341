"""Two nodes on one PostgreSQL (issue #5 part 5): a change made through one node answers
through the other within 1 s; the database stopped under load costs no proxied request,
writes answer 503, `/status` says so; restarted, writes succeed and the nodes converge; a
node started while the database is down serves its cached config."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from cluster_pg import ThrowawayPostgres
from node_support import Node, Upstream, wait_until

PROPAGATION_CHANGES = 20


def _service(node: Node, upstream: Upstream) -> None:
    r = node.admin("POST", "/services", json={"name": "svc", "url": upstream.url})
    assert r.status_code == 201, r.text


def _route(node: Node, name: str, path: str, **kwargs: Any) -> httpx.Response:
    return node.admin("POST", "/services/svc/routes", json={"name": name, "paths": [path]},
                      **kwargs)


def _answers(node: Node, path: str) -> bool:
    try:
        return node.get(path, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def test_change_through_a_reaches_b_within_a_second(
        cluster_pg: ThrowawayPostgres, cluster_nodes: Callable[..., Node],
        cluster_upstream: Upstream) -> None:
    a = cluster_nodes("a", cluster_pg.env(), workers=1)
    b = cluster_nodes("b", cluster_pg.env(), workers=1)
    _service(a, cluster_upstream)
    latencies = []
    for i in range(PROPAGATION_CHANGES):
        path = f"/r{i}-end"  # no path is a prefix of another
        assert b.get(path).status_code == 404
        r = _route(a, f"r{i}", path)
        assert r.status_code == 201, r.text
        created = time.monotonic()
        while not _answers(b, path):
            assert time.monotonic() - created < 5, f"route {path} never reached node B"
            time.sleep(0.01)
        latencies.append(time.monotonic() - created)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(f"\npropagation A→B over {len(latencies)} changes: median "
          f"{statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
          f"max {latencies[-1] * 1000:.0f} ms")
    assert p99 < 1.0, latencies

    # both report the same revision and hash; /cluster/nodes lists both, in sync
    sa, sb = a.status(), b.status()
    assert sa["configuration_hash"] == sb["configuration_hash"]
    assert sa["configuration_revision"] == sb["configuration_revision"]

    def listed() -> dict[str, Any] | None:
        body: dict[str, Any] = b.admin("GET", "/cluster/nodes").json()
        rows = {n["id"]: n for n in body["data"]}
        ok = (set(rows) == {sa["node_id"], sb["node_id"]}
              and all(n["in_sync"] and n["alive"] for n in rows.values()))
        return body if ok else None

    body = wait_until(listed, 5, what="both nodes in /cluster/nodes, in sync")
    assert body["latest"]["configuration_hash"] == sa["configuration_hash"]
    for n in body["data"]:
        assert n["revision"] == sa["configuration_revision"]
        assert n["last_seen_seconds_ago"] < 5


def test_write_on_a_stale_node_is_computed_on_the_latest_revision(
        cluster_pg: ThrowawayPostgres, cluster_nodes: Callable[..., Node],
        cluster_upstream: Upstream) -> None:
    """Writes through both nodes, back to back: none is lost (each write is computed on the
    database's latest revision, not the node's possibly stale copy)."""
    a = cluster_nodes("a", cluster_pg.env(), workers=1)
    b = cluster_nodes("b", cluster_pg.env(), workers=1)
    _service(a, cluster_upstream)
    for i in range(10):
        node = a if i % 2 == 0 else b
        assert _route(node, f"w{i}", f"/w{i}").status_code == 201
    names = {r["name"] for r in a.admin("GET", "/routes").json()["data"]}
    assert names == {f"w{i}" for i in range(10)}


def test_database_outage_under_load(cluster_pg: ThrowawayPostgres,
                                    cluster_nodes: Callable[..., Node],
                                    cluster_upstream: Upstream) -> None:
    a = cluster_nodes("a", cluster_pg.env(), workers=2)
    b = cluster_nodes("b", cluster_pg.env(), workers=2)
    _service(a, cluster_upstream)
    assert _route(a, "live", "/live").status_code == 201
    wait_until(lambda: _answers(b, "/live"), 5, what="route on node B")
    assert a.status()["database"] == {"reachable": True}
    live = a.admin("GET", "/routes/live").json()

    failures: list[str] = []
    sent = [0]
    stop = threading.Event()
    # node B is restarted mid-test: load only node A's proxy, and B's before and after
    targets = [a]

    def load() -> None:
        with httpx.Client(timeout=5.0) as client:
            while not stop.is_set():
                for node in list(targets):
                    try:
                        r = client.get(node.proxy_url + "/live")
                        if r.status_code != 200:
                            failures.append(f"{node.proxy_url}: {r.status_code} {r.text}")
                    except httpx.HTTPError as exc:
                        failures.append(f"{node.proxy_url}: {exc!r}")
                    sent[0] += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        cluster_pg.stop()

        # /status says the database is unreachable (the next heartbeat or poll finds out)
        wait_until(lambda: a.status()["database"]["reachable"] is False, 10,
                   what="node A reporting the database unreachable")
        status = a.status()
        assert status["database"]["error"]
        # writes: 503 with a clear message, nothing changed
        r = _route(a, "during", "/during")
        assert r.status_code == 503, r.text
        assert "database is unreachable" in r.json()["message"]
        assert r.headers.get("retry-after")
        r = a.admin("POST", "/config", json={"_format_version": "3.0"})
        assert r.status_code == 503, r.text
        assert a.admin("GET", "/cluster/nodes").status_code == 503
        metrics = a.admin("GET", "/metrics").text
        assert "gateway_datastore_reachable 0" in metrics

        # a node starting while the database is down serves its cached config
        b.stop()
        b.start()
        assert b.status()["database"]["reachable"] is False
        assert b.get("/live").status_code == 200
        # with the entities' times as stored, not the restart's
        cached = b.admin("GET", "/routes/live").json()
        assert (cached["created_at"], cached["updated_at"]) == (live["created_at"],
                                                                live["updated_at"])
        targets.append(b)
        time.sleep(1.0)

        cluster_pg.start()
        # on recovery both nodes catch up by themselves; writes succeed again
        wait_until(lambda: all(n.status()["database"]["reachable"] for n in (a, b)), 15,
                   what="both nodes reporting the database reachable")
        r = _route(b, "after", "/after")
        assert r.status_code == 201, r.text
        wait_until(lambda: _answers(a, "/after"), 5, what="the new route on node A")
    finally:
        stop.set()
        for t in threads:
            t.join()
    print(f"\noutage under load: {sent[0]} proxied requests, {len(failures)} failed")
    assert sent[0] > 100
    assert failures == []

    def converged() -> bool:
        sa, sb = a.status(), b.status()
        return (sa["configuration_hash"] == sb["configuration_hash"]
                and sa["configuration_revision"] == sb["configuration_revision"])

    wait_until(converged, 5, what="both nodes on one hash")
    assert "gateway_datastore_reachable 1" in a.admin("GET", "/metrics").text
