"""docs/deployment.md's plain-config canary recipe, run as written (ports rewritten)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from balancing_support import Target, count
from dataplane_helpers import Gateway, LoopThread

DOC = Path(__file__).resolve().parents[3] / "docs" / "deployment.md"


def recipe() -> str:
    text = DOC.read_text()
    section = text.split("## Weighted canaries and blue-green with plain config", 1)[1]
    m = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert m is not None
    return m.group(1)


def test_weighted_canary_and_forced_canary(target_loop: LoopThread) -> None:
    stable, canary = Target(target_loop, "stable"), Target(target_loop, "canary")
    text = recipe().replace("127.0.0.1:9101", stable.addr).replace("127.0.0.1:9102",
                                                                   canary.addr)
    doc: dict[str, Any] = yaml.safe_load(text)
    g = Gateway(doc, {})
    try:
        got = count(g.port, 10_000, path="/api/orders")
        assert abs(got["stable"] / 10_000 - 0.9) <= 0.045, got
        assert abs(got["canary"] / 10_000 - 0.1) <= 0.005, got
        forced = count(g.port, 50, path="/api/orders", headers={"x-canary": "true"})
        assert forced == {"canary": 50}
        # blue-green: one atomic change of the service's host, and back
        doc["services"][0]["host"] = "orders-canary.upstream"
        g.swap(doc)
        assert count(g.port, 20, path="/api/orders") == {"canary": 20}
        doc["services"][0]["host"] = "orders.upstream"
        g.swap(doc)
        assert set(count(g.port, 20, path="/api/orders")) <= {"stable", "canary"}
    finally:
        g.close()
