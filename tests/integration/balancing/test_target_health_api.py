"""`PUT /upstreams/{u}/targets/{t}/healthy|unhealthy` (Kong §4.6) through a real node."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from balancing_support import Target, document
from dataplane_helpers import LoopThread
from node_support import Node


def served_by(node: Node, n: int) -> Counter[str]:
    # A fresh connection per request: the kernel spreads them over both workers.
    return Counter(r.text if r.status_code == 200 else str(r.status_code)
                   for r in (node.get("/") for _ in range(n)))


def test_mark_target_unhealthy_then_healthy(target_loop: LoopThread, tmp_path: Path) -> None:
    a, b = Target(target_loop, "a"), Target(target_loop, "b")
    up = {"name": "manual.up", "targets": [{"target": a.addr}, {"target": b.addr}]}
    node = Node(tmp_path / "node", config=document(up), workers=2).start()
    try:
        assert set(served_by(node, 20)) == {"a", "b"}
        targets = node.admin("GET", "/upstreams/manual.up/targets").json()["data"]
        b_id = next(t["id"] for t in targets if t["target"] == b.addr)

        r = node.admin("PUT", f"/upstreams/manual.up/targets/{b_id}/unhealthy")
        assert r.status_code == 204, r.text
        assert served_by(node, 60) == Counter({"a": 60})

        # by host:port, and the upstream by name
        r = node.admin("PUT", f"/upstreams/manual.up/targets/{b.addr}/healthy")
        assert r.status_code == 204, r.text
        assert set(served_by(node, 40)) == {"a", "b"}

        assert node.admin("PUT", "/upstreams/manual.up/targets/127.0.0.1:1/unhealthy"
                          ).status_code == 404
        assert node.admin("PUT", f"/upstreams/nope/targets/{b.addr}/unhealthy"
                          ).status_code == 404
    finally:
        node.stop()
