"""Active and passive health checks (issue #4 part 2), with real sockets and real nodes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from balancing_support import Target, count, document
from dataplane_helpers import Gateway, LoopThread
from node_support import Node

from tollway.dataplane.upstream import health


def wait_for(check: Any, timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def target_health(node: Node, upstream: str) -> dict[str, str]:
    r = node.admin("GET", f"/upstreams/{upstream}/health")
    assert r.status_code == 200, r.text
    return {d["target"]: d["health"] for d in r.json()["data"]}


ACTIVE = {"active": {"http_path": "/status", "timeout": 1,
                     "healthy": {"interval": 0.2, "successes": 2},
                     "unhealthy": {"interval": 0.2, "tcp_failures": 2, "http_failures": 2,
                                   "timeouts": 2}},
          "passive": {"unhealthy": {"tcp_failures": 1}}}


def test_killed_target_goes_unhealthy_and_comes_back(target_loop: LoopThread,
                                                     tmp_path: Path) -> None:
    a, b = Target(target_loop, "a"), Target(target_loop, "b")
    up = {"name": "hc.up", "healthchecks": ACTIVE,
          "targets": [{"target": a.addr}, {"target": b.addr}]}
    node = Node(tmp_path / "node", config=document(up), workers=2).start()
    try:
        wait_for(lambda: set(target_health(node, "hc.up").values()) == {"HEALTHY"},
                 what="both targets healthy")
        wait_for(lambda: b.probes > 0, what="active probes")
        b.stop()
        wait_for(lambda: target_health(node, "hc.up")[b.addr] == "UNHEALTHY",
                 what="b unhealthy")
        metrics = node.admin("GET", "/metrics").text
        assert (f'gateway_upstream_target_health{{upstream="hc.up",target="{b.addr}",'
                f'address="{b.addr}",state="unhealthy"}} 1') in metrics
        # every request is served by the healthy target, none fails
        codes = [node.get("/").status_code for _ in range(40)]
        assert codes == [200] * 40
        balancer = node.admin("GET", "/upstreams/hc.up/health?balancer_health=1").json()
        assert balancer["data"]["health"] == "HEALTHY"
        assert balancer["data"]["details"]["weight"] == {"total": 200, "available": 100,
                                                         "unavailable": 100}
        b.start()  # same port
        wait_for(lambda: target_health(node, "hc.up")[b.addr] == "HEALTHY",
                 what="b healthy again")
        before = b.hits
        for _ in range(40):
            node.get("/")
        assert b.hits > before
        assert node.admin("GET", "/upstreams/nope/health").status_code == 404
    finally:
        node.stop()


def test_passive_unhealthy_recovers_by_half_open_trial(target_loop: LoopThread,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "HALF_OPEN_AFTER", 0.5)
    a, b = Target(target_loop, "a"), Target(target_loop, "b")
    b.status = 500
    up = {"name": "passive.up", "healthchecks": {
        "passive": {"unhealthy": {"http_failures": 3}, "healthy": {"successes": 1}}},
        "targets": [{"target": a.addr}, {"target": b.addr}]}
    g = Gateway(document(up), {})
    try:
        got = count(g.port, 40)
        assert got.get("500", 0) == 3, got  # three 500s, then b is out
        peer_b = next(p for p in g.state.snapshot.balancers["passive.up"].peers
                      if p.port == b.port)
        assert not peer_b.healthy
        b.status = 200
        hits = b.hits
        assert count(g.port, 20) == {"a": 20}
        time.sleep(0.6)
        got = count(g.port, 40)
        assert got.get("b", 0) >= 15, got  # one trial, then healthy: back in rotation
        assert b.hits > hits and peer_b.healthy
        # a failed trial keeps it out and restarts the wait
        b.status = 500
        count(g.port, 10)
        assert not peer_b.healthy
        assert count(g.port, 10) == {"a": 10}
    finally:
        g.close()


def test_balancer_survives_unchanged_swap_and_inherits_health(target_loop: LoopThread) -> None:
    a, b = Target(target_loop, "a"), Target(target_loop, "b")
    b.status = 500
    up = {"name": "keep.up", "healthchecks": {"passive": {"unhealthy": {"http_failures": 1}}},
          "targets": [{"target": a.addr}, {"target": b.addr}]}
    doc = document(up)
    g = Gateway(doc, {})
    try:
        count(g.port, 4)
        bal = g.state.snapshot.balancers["keep.up"]
        assert [p.healthy for p in bal.peers] == [True, False]
        doc2 = {**doc, "routes": [], "services": [
            {**doc["services"][0], "routes": [{"name": "r2", "paths": ["/"]}]}]}
        g.swap(doc2)  # routes changed, upstream did not: same balancer object
        assert g.state.snapshot.balancers["keep.up"] is bal
        up2 = {**up, "targets": [{"target": a.addr, "weight": 50}, {"target": b.addr}]}
        g.swap(document(up2))
        bal2 = g.state.snapshot.balancers["keep.up"]
        assert bal2 is not bal
        assert [p.healthy for p in bal2.peers] == [True, False]  # health carried over
        assert count(g.port, 10) == {"a": 10}
    finally:
        g.close()
