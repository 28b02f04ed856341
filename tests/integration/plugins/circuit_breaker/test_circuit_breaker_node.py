"""circuit-breaker on a real node (`tollway start`, two workers) in front of a scriptable
upstream: opens on failures, answers 503 without calling the upstream, probes half-open and
closes when the upstream recovers; the Admin API lists and forces it; the metric follows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dataplane_helpers import LoopThread, Upstream, echo_path, respond
from node_support import Node, wait_until

CONFIG = {"failure_threshold": 50, "minimum_calls": 4, "window_size": 30, "cooldown": 1,
          "half_open_probes": 2}


@pytest.fixture
def cb_upstream() -> Iterator[Upstream]:
    lt = LoopThread(use_uvloop=False, name="cb-upstream")
    up = Upstream(lt)
    yield up
    up.close()
    lt.stop()


@pytest.fixture
def cb_node(tmp_path: Path, cb_upstream: Upstream) -> Iterator[Node]:
    doc = {"_format_version": "3.0", "services": [
        {"name": "orders", "url": cb_upstream.url,
         "routes": [{"name": "orders", "paths": ["/orders"]}],
         "plugins": [{"name": "circuit-breaker", "config": CONFIG}]},
        {"name": "users", "url": cb_upstream.url,
         "routes": [{"name": "users", "paths": ["/users"]}]},
    ]}
    node = Node(tmp_path / "cb", config=doc, workers=2).start()
    yield node
    node.stop()


def breakers(node: Node) -> dict[str, dict[str, Any]]:
    r = httpx.get(node.admin_url + "/status/circuit-breaker")
    assert r.status_code == 200
    return {b["service"]: b for b in r.json()["data"]}


def metric(node: Node) -> str | None:
    text = httpx.get(node.admin_url + "/metrics").text
    m = re.search(r'^gateway_circuit_breaker_state\{service="orders"\} (\d+)$', text, re.M)
    return m.group(1) if m else None


def force(node: Node, state: str) -> httpx.Response:
    return httpx.post(node.admin_url + "/status/circuit-breaker/orders", json={"state": state})


def test_opens_rejects_probes_and_closes(cb_node: Node, cb_upstream: Upstream) -> None:
    listed = breakers(cb_node)["orders"]  # listed before any traffic
    assert listed["state"] == "closed" and listed["mode"] == "auto"
    assert "users" not in breakers(cb_node)
    assert metric(cb_node) == "0"

    cb_upstream.behaviour = respond(500, b"boom")
    with httpx.Client(base_url=cb_node.proxy_url) as c:
        statuses = [c.get("/orders/x").status_code for _ in range(4)]
        assert statuses == [500] * 4
        calls = len(cb_upstream.requests)
        r = c.get("/orders/x")
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert r.json()["service"] == "orders"
        assert "circuit breaker open" in r.json()["message"]
        assert len(cb_upstream.requests) == calls  # the upstream was not called
        # the breaker's 503 is not a failure of the upstream, and other services are unaffected
        assert c.get("/users/x").status_code == 500
        b = breakers(cb_node)["orders"]
        assert b["state"] == "open" and b["totals"]["failures"] == 4
        assert b["totals"]["rejected"] == 1 and "50%" in b["reason"]
        assert metric(cb_node) == "1"

        # after the cool-down a probe fails: open again
        assert wait_until(lambda: c.get("/orders/x").status_code == 500, 10,
                          what="a half-open probe")
        assert breakers(cb_node)["orders"]["state"] == "open"

        # the upstream recovers: two successful probes close it
        cb_upstream.behaviour = echo_path
        assert wait_until(lambda: c.get("/orders/x").status_code == 200, 10,
                          what="a successful probe")
        assert breakers(cb_node)["orders"]["state"] == "half-open"
        assert metric(cb_node) == "2"
        assert c.get("/orders/y").status_code == 200
        assert breakers(cb_node)["orders"]["state"] == "closed"
        assert metric(cb_node) == "0"
        assert [c.get("/orders/z").status_code for _ in range(5)] == [200] * 5


def test_manual_override(cb_node: Node, cb_upstream: Upstream) -> None:
    with httpx.Client(base_url=cb_node.proxy_url) as c:
        assert c.get("/orders/a").status_code == 200
        r = force(cb_node, "open")
        assert r.status_code == 200
        assert r.json()["state"] == "open" and r.json()["mode"] == "open"
        calls = len(cb_upstream.requests)
        assert {c.get("/orders/a").status_code for _ in range(4)} == {503}
        assert len(cb_upstream.requests) == calls
        assert metric(cb_node) == "1"
        assert breakers(cb_node)["orders"]["mode"] == "open"

        # forced closed: failures pass through and never trip it
        assert force(cb_node, "closed").json()["state"] == "closed"
        cb_upstream.behaviour = respond(502)
        assert {c.get("/orders/a").status_code for _ in range(8)} == {502}
        assert breakers(cb_node)["orders"]["state"] == "closed"
        assert metric(cb_node) == "0"

        # back to auto from forced open: half-open, probes decide
        force(cb_node, "open")
        cb_upstream.behaviour = echo_path
        assert force(cb_node, "auto").json()["state"] == "half-open"
        assert metric(cb_node) == "2"
        assert [c.get("/orders/b").status_code for _ in range(3)] == [200] * 3
        assert breakers(cb_node)["orders"]["state"] == "closed"
    assert re.search(r"circuit breaker orders: forced open", cb_node.stderr() + cb_node.stdout())


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"state": "shut"}, 400, "schema violation (state: expected one of: open, closed, auto)"),
    ({}, 400, "schema violation (state: required field missing)"),
])
def test_override_errors(cb_node: Node, body: dict[str, Any], status: int,
                         message: str) -> None:
    r = httpx.post(cb_node.admin_url + "/status/circuit-breaker/orders", json=body)
    assert (r.status_code, r.json()["message"]) == (status, message)
    r = httpx.post(cb_node.admin_url + "/status/circuit-breaker/users", json={"state": "open"})
    assert r.status_code == 404
    assert r.json()["message"] == ("no circuit breaker for 'users': no circuit-breaker plugin "
                                   "applies to it")
