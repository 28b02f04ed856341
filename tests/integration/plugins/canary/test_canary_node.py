"""canary on a real node (`tollway start`, two workers) between two scriptable upstreams:
sticky split by header, automatic rollback of a failing or slow canary, the Admin API listing
and the metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dataplane_helpers import LoopThread, Upstream, respond, slow
from node_support import Node


@pytest.fixture
def cn_loop() -> Iterator[LoopThread]:
    lt = LoopThread(use_uvloop=False, name="canary-upstreams")
    yield lt
    lt.stop()


def doc(stable: Upstream, canary: Upstream, **config: Any) -> dict[str, Any]:
    conf = {"stable_upstream": "shop-stable", "canary_upstream": "shop-canary",
            "steps": [{"percent": 50, "duration": 3600}, {"percent": 100}],
            "hash_on": "header", "hash_on_header": "X-User", "min_samples": 20,
            **config}
    return {"_format_version": "3.0",
            "upstreams": [
                {"name": "shop-stable", "targets": [{"target": f"127.0.0.1:{stable.port}"}]},
                {"name": "shop-canary", "targets": [{"target": f"127.0.0.1:{canary.port}"}]}],
            "services": [{"name": "shop", "url": "http://shop-stable",
                          "routes": [{"name": "shop", "paths": ["/shop"]}],
                          "plugins": [{"name": "canary", "config": conf}]}]}


def listing(node: Node) -> dict[str, Any]:
    r = httpx.get(node.admin_url + "/status/canary")
    assert r.status_code == 200
    (only,) = r.json()["data"]
    return dict(only)


def gauge(node: Node, name: str) -> str | None:
    text = httpx.get(node.admin_url + "/metrics").text
    m = re.search(rf'^{name}\{{canary="shop"\}} (\S+)$', text, re.M)
    return m.group(1) if m else None


def run(tmp_path: Path, stable: Upstream, canary: Upstream, **config: Any) -> Node:
    return Node(tmp_path / "canary", config=doc(stable, canary, **config), workers=2).start()


def test_sticky_split_then_rollback_on_errors(tmp_path: Path, cn_loop: LoopThread) -> None:
    stable = Upstream(cn_loop, respond(200, b"stable"))
    canary = Upstream(cn_loop, respond(200, b"canary"))
    node = run(tmp_path, stable, canary)
    try:
        assert listing(node)["status"] == "progressing" and listing(node)["weight"] == 50
        assert gauge(node, "gateway_canary_weight") == "50"
        with httpx.Client(base_url=node.proxy_url) as c:
            sides: dict[str, set[str]] = {}
            for rnd in range(2):
                for user in range(30):
                    r = c.get(f"/shop/{rnd}", headers={"X-User": f"user-{user}"})
                    assert r.status_code == 200
                    sides.setdefault(f"user-{user}", set()).add(r.text)
            assert all(len(s) == 1 for s in sides.values()), sides  # users stay on one side
            on_canary = sum(1 for s in sides.values() if s == {"canary"})
            assert 5 <= on_canary <= 25  # about half of 30
            seen = listing(node)
            assert seen["canary"]["requests"] == 2 * on_canary
            assert seen["stable"]["requests"] == 60 - 2 * on_canary

            canary.behaviour = respond(500, b"broken build")
            n = 0
            while not listing(node)["rolled_back"] and n < 400:
                c.get("/shop/x", headers={"X-User": f"u{n}"})
                n += 1
            seen = listing(node)
            assert seen["rolled_back"] and seen["status"] == "rolled_back"
            assert "canary error rate" in seen["reason"] and seen["weight"] == 0
            assert gauge(node, "gateway_canary_weight") == "0"
            assert gauge(node, "gateway_canary_rolled_back") == "1"
            calls = len(canary.requests)
            for user in range(30):  # everyone is back on stable
                r = c.get("/shop/y", headers={"X-User": f"user-{user}"})
                assert (r.status_code, r.text) == (200, "stable")
            assert len(canary.requests) == calls
        assert "canary shop rolled back to shop-stable" in node.stderr() + node.stdout()
    finally:
        node.stop()
        stable.close()
        canary.close()


def test_slow_canary_rolls_back(tmp_path: Path, cn_loop: LoopThread) -> None:
    stable, canary = Upstream(cn_loop), Upstream(cn_loop)
    canary.behaviour = slow(0.15)
    node = run(tmp_path, stable, canary, min_samples=10, max_latency_ratio=2)
    try:
        with httpx.Client(base_url=node.proxy_url) as c:
            n = 0
            while not listing(node)["rolled_back"] and n < 300:
                c.get("/shop/x", headers={"X-User": f"u{n}"})
                n += 1
        seen = listing(node)
        assert seen["rolled_back"], seen
        assert seen["reason"].startswith("canary p95 latency"), seen["reason"]
        assert seen["canary"]["errors"] == 0
    finally:
        node.stop()
        stable.close()
        canary.close()
