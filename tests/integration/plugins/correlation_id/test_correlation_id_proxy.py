"""correlation-id through a real gateway (Kong §3.4)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import pytest
from dataplane_helpers import Gateway, RawClient, Upstream
from edge_plugins_support import service

Make = Callable[..., Gateway]
Client = Callable[..., RawClient]
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
COUNTER = re.compile(UUID4.pattern + r"#(\d+)")


def cid(**config: Any) -> list[dict[str, Any]]:
    return [{"name": "correlation-id", "config": config}]


def test_seed_config_uuid_sent_upstream_and_echoed(
        edge_gateway: Make, edge_upstream: Upstream, edge_client: Client) -> None:
    gw = edge_gateway(service(edge_upstream.url, plugins=cid(
        header_name="X-Request-ID", generator="uuid", echo_downstream=True)))
    c = edge_client(gw.port)
    ids = set()
    for _ in range(3):
        resp = c.request("GET", "/")
        assert resp.status == 200
        value = resp.header("X-Request-ID")
        assert value is not None and UUID4.fullmatch(value)
        ids.add(value)
    assert [r.all("X-Request-ID") for r in edge_upstream.requests] == [[v] for v in
                                                                          _ordered(edge_upstream)]
    assert {r.header("X-Request-ID") for r in edge_upstream.requests} == ids
    assert len(ids) == 3


def _ordered(up: Upstream) -> list[str]:
    return [r.header("X-Request-ID") or "" for r in up.requests]


@pytest.mark.parametrize("name", ["X-Request-ID", "x-request-id"])
def test_incoming_value_kept_and_echoed(name: str, edge_gateway: Make,
                                        edge_upstream: Upstream, edge_client: Client) -> None:
    gw = edge_gateway(service(edge_upstream.url, plugins=cid(
        header_name="X-Request-ID", generator="uuid", echo_downstream=True)))
    resp = edge_client(gw.port).request("GET", "/", [(name, "client-chosen-id")])
    assert resp.header("X-Request-ID") == "client-chosen-id"
    assert edge_upstream.requests[0].all("X-Request-ID") == ["client-chosen-id"]


def test_empty_incoming_value_is_replaced(edge_gateway: Make, edge_upstream: Upstream,
                                          edge_client: Client) -> None:
    gw = edge_gateway(service(edge_upstream.url, plugins=cid(
        header_name="X-Request-ID", generator="uuid", echo_downstream=True)))
    resp = edge_client(gw.port).request("GET", "/", [("X-Request-ID", "")])
    value = resp.header("X-Request-ID")
    assert value is not None and UUID4.fullmatch(value)
    assert edge_upstream.requests[0].all("X-Request-ID") == [value]


def test_defaults_uuid_counter_not_echoed(edge_gateway: Make, edge_upstream: Upstream,
                                          edge_client: Client) -> None:
    gw = edge_gateway(service(edge_upstream.url, plugins=cid()))
    c = edge_client(gw.port)
    for _ in range(3):
        resp = c.request("GET", "/")
        assert resp.header("Kong-Request-ID") is None  # echo_downstream defaults to false
    values = [r.header("Kong-Request-ID") or "" for r in edge_upstream.requests]
    matches = [COUNTER.fullmatch(v) for v in values]
    assert all(matches), values
    prefixes = {v.split("#")[0] for v in values}
    assert len(prefixes) == 1  # one uuid per worker
    counts = [int(m.group(1)) for m in matches if m]
    assert counts == [counts[0], counts[0] + 1, counts[0] + 2]


def test_counter_survives_a_config_swap(edge_gateway: Make, edge_upstream: Upstream,
                                        edge_client: Client) -> None:
    doc = service(edge_upstream.url, plugins=cid())
    gw = edge_gateway(doc)
    edge_client(gw.port).request("GET", "/")
    doc["plugins"][0]["config"]["header_name"] = "X-Other"
    gw.swap(doc)
    edge_client(gw.port).request("GET", "/")
    first = edge_upstream.requests[0].header("Kong-Request-ID") or ""
    second = edge_upstream.requests[1].header("X-Other") or ""
    assert first.split("#")[0] == second.split("#")[0]
    assert int(second.split("#")[1]) == int(first.split("#")[1]) + 1


def test_tracker(edge_gateway: Make, edge_upstream: Upstream, edge_client: Client) -> None:
    gw = edge_gateway(service(edge_upstream.url, plugins=cid(generator="tracker")))
    c1 = edge_client(gw.port)
    c1.request("GET", "/")
    c1.request("GET", "/")
    edge_client(gw.port).request("GET", "/")
    tracker = re.compile(rf"127\.0\.0\.1-{gw.port}-{os.getpid()}-(\d+)-(\d+)-\d+\.\d{{3}}")
    parts = []
    for r in edge_upstream.requests:
        m = tracker.fullmatch(r.header("Kong-Request-ID") or "")
        assert m, r.header("Kong-Request-ID")
        parts.append((int(m.group(1)), int(m.group(2))))
    (s1, n1), (s2, n2), (s3, n3) = parts
    assert s1 == s2 != s3  # connection serial
    assert (n1, n2, n3) == (1, 2, 1)  # requests on the connection


def test_echo_on_a_local_reply(edge_gateway: Make, edge_upstream: Upstream,
                               edge_client: Client) -> None:
    # a global plugin's header_filter runs on the router's 404, access never ran
    gw = edge_gateway(service(edge_upstream.url, routes=[{"name": "r", "paths": ["/only"]}],
                              plugins=cid(generator="uuid", echo_downstream=True)))
    c = edge_client(gw.port)
    resp = c.request("GET", "/elsewhere")
    assert resp.status == 404
    assert UUID4.fullmatch(resp.header("Kong-Request-ID") or "")
    resp = c.request("GET", "/elsewhere", [("Kong-Request-ID", "mine")])
    assert resp.header("Kong-Request-ID") == "mine"
