"""The prometheus plugin on an in-process worker: what the log phase counts, with which
labels, and the caps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from dataplane_helpers import Gateway, Upstream
from prom_scrape import check_histograms, parse, series_labels, total, value

from tollway import metrics


def scrape(gw: Gateway) -> dict[Any, float]:
    # On the gateway's loop: the log phase of the last request has certainly run.
    text = gw.lt.call(lambda: metrics.for_worker(gw.state.plugin_state).render())
    return parse(text)


def doc(url: str, plugins: list[dict[str, Any]], **svc_extra: Any) -> dict[str, Any]:
    return {
        "_format_version": "3.0",
        "services": [
            {"name": "users", "url": url, **svc_extra,
             "routes": [{"name": "users-list", "paths": ["/users"]},
                        {"paths": ["/unnamed"]}]},
            {"name": "orders", "url": url, "routes": [{"name": "orders", "paths": ["/orders"]}]},
        ],
        "plugins": plugins,
    }


def test_global_counts_routes_and_404s(prom_gateway: Callable[..., Gateway],
                                       prom_upstream: Upstream) -> None:
    gw = prom_gateway(doc(prom_upstream.url, [{"name": "prometheus"}]))
    with httpx.Client(base_url=gw.url) as c:
        for _ in range(3):
            assert c.get("/users").status_code == 200
        assert c.post("/orders", content=b"x" * 100).status_code == 200
        assert c.get("/nowhere").status_code == 404
        assert c.request("PROPFIND", "/users").status_code == 200
        assert c.get("/unnamed").status_code == 200
    s = scrape(gw)
    req = "gateway_requests_total"
    assert value(s, req, service="users", route="users-list", method="GET", status="200",
                 consumer="") == 3
    assert value(s, req, service="orders", route="orders", method="POST", status="200",
                 consumer="") == 1
    assert value(s, req, service="", route="", method="GET", status="404", consumer="") == 1
    # methods are client-chosen tokens: unknown ones share one series
    assert value(s, req, service="users", route="users-list", method="other", status="200",
                 consumer="") == 1
    # an unnamed route is labelled by its id (Kong's)
    unnamed = [ls["route"] for ls in series_labels(s, req) if ls["route"] not in
               ("users-list", "orders", "")]
    assert len(unnamed) == 1 and len(unnamed[0]) == 36
    assert total(s, req) == 7
    # every request is in the duration histogram; only proxied ones in the upstream one
    assert total(s, "gateway_request_duration_seconds_count") == 7
    assert value(s, "gateway_request_duration_seconds_count", service="", route="") == 1
    assert total(s, "gateway_upstream_duration_seconds_count") == 6
    assert value(s, "gateway_upstream_duration_seconds_count", service="", route="") == 0
    assert check_histograms(s, "gateway_request_duration_seconds") == 4
    assert check_histograms(s, "gateway_upstream_duration_seconds") == 3
    bw = "gateway_bandwidth_bytes_total"
    assert value(s, bw, service="orders", route="orders", direction="ingress") == 100
    assert value(s, bw, service="orders", route="orders", direction="egress") > 0
    assert value(s, bw, service="", route="", direction="egress") > 0


def test_service_scoped_counts_only_that_service(prom_gateway: Callable[..., Gateway],
                                                 prom_upstream: Upstream) -> None:
    d = doc(prom_upstream.url, [])
    d["services"][0]["plugins"] = [{"name": "prometheus"}]
    gw = prom_gateway(d)
    with httpx.Client(base_url=gw.url) as c:
        c.get("/users")
        c.get("/orders")
        c.get("/orders")
        c.get("/nowhere")
    s = scrape(gw)
    assert total(s, "gateway_requests_total") == 1
    assert total(s, "gateway_requests_total", service="users") == 1


def test_per_consumer_label(prom_gateway: Callable[..., Gateway], prom_upstream: Upstream,
                            fake_plugins: None) -> None:
    gw = prom_gateway(doc(prom_upstream.url, [
        {"name": "test-prom-auth"},
        {"name": "prometheus", "config": {"per_consumer": True}},
    ]))
    with httpx.Client(base_url=gw.url) as c:
        c.get("/users", headers={"X-User": "alice"})
        c.get("/users", headers={"X-User": "alice"})
        c.get("/users", headers={"X-User": "bob"})
        c.get("/users")
    s = scrape(gw)
    req = "gateway_requests_total"
    base = {"service": "users", "route": "users-list", "method": "GET", "status": "200"}
    assert value(s, req, **base, consumer="alice") == 2
    assert value(s, req, **base, consumer="bob") == 1
    assert value(s, req, **base, consumer="") == 1


def test_without_per_consumer_the_label_stays_empty(
        prom_gateway: Callable[..., Gateway], prom_upstream: Upstream,
        fake_plugins: None) -> None:
    gw = prom_gateway(doc(prom_upstream.url, [{"name": "test-prom-auth"},
                                              {"name": "prometheus"}]))
    with httpx.Client(base_url=gw.url) as c:
        c.get("/users", headers={"X-User": "alice"})
    s = scrape(gw)
    assert [ls["consumer"] for ls in series_labels(s, "gateway_requests_total")] == [""]


def test_rate_limit_exceeded_counted(prom_gateway: Callable[..., Gateway],
                                     prom_upstream: Upstream, fake_plugins: None) -> None:
    gw = prom_gateway(doc(prom_upstream.url, [{"name": "test-prom-limit"},
                                              {"name": "prometheus"}]))
    with httpx.Client(base_url=gw.url) as c:
        assert c.get("/users", headers={"X-Limit": "1"}).status_code == 429
        assert c.get("/users", headers={"X-Limit": "1"}).status_code == 429
        assert c.get("/users").status_code == 200
    s = scrape(gw)
    assert value(s, "gateway_rate_limit_exceeded_total", service="users",
                 route="users-list") == 2
    assert value(s, "gateway_requests_total", service="users", route="users-list",
                 method="GET", status="429", consumer="") == 2


def test_metric_flags_off(prom_gateway: Callable[..., Gateway],
                          prom_upstream: Upstream) -> None:
    gw = prom_gateway(doc(prom_upstream.url, [{"name": "prometheus", "config": {
        "status_code_metrics": False, "latency_metrics": False, "bandwidth_metrics": False}}]))
    with httpx.Client(base_url=gw.url) as c:
        c.get("/users")
    s = scrape(gw)
    assert total(s, "gateway_requests_total") == 0
    assert total(s, "gateway_request_duration_seconds_count") == 0
    assert total(s, "gateway_bandwidth_bytes_total") == 0


def test_label_cap(prom_gateway: Callable[..., Gateway], prom_upstream: Upstream,
                   fake_plugins: None) -> None:
    gw = prom_gateway(doc(prom_upstream.url, [
        {"name": "test-prom-auth"},
        {"name": "prometheus", "config": {"per_consumer": True}},
    ]))
    reg = metrics.for_worker(gw.state.plugin_state)
    assert reg.metrics["gateway_requests_total"].limit == metrics.SERIES_LIMIT == 10_000
    reg.metrics["gateway_requests_total"].limit = 5  # the same code path, a smaller flood
    with httpx.Client(base_url=gw.url) as c:
        for i in range(20):
            c.get("/users", headers={"X-User": f"user{i}"})
    s = scrape(gw)
    labels = series_labels(s, "gateway_requests_total")
    assert len(labels) == 6
    assert value(s, "gateway_requests_total", service="other", route="other", method="other",
                 status="other", consumer="other") == 15
    assert total(s, "gateway_requests_total") == 20


def test_counters_survive_a_config_swap(prom_gateway: Callable[..., Gateway],
                                        prom_upstream: Upstream) -> None:
    d = doc(prom_upstream.url, [{"name": "prometheus"}])
    gw = prom_gateway(d)
    with httpx.Client(base_url=gw.url) as c:
        c.get("/users")
        gw.swap(doc(prom_upstream.url, [{"name": "prometheus", "config": {
            "per_consumer": True}}]))
        c.get("/users")
    s = scrape(gw)
    assert value(s, "gateway_requests_total", service="users", route="users-list",
                 method="GET", status="200", consumer="") == 2


@pytest.mark.parametrize("path", ["/users", "/nowhere"])
def test_log_phase_does_not_format_strings(prom_gateway: Callable[..., Gateway],
                                           prom_upstream: Upstream, path: str) -> None:
    """The label tuples of a route are built once: two requests share the same objects."""
    gw = prom_gateway(doc(prom_upstream.url, [{"name": "prometheus"}]))
    with httpx.Client(base_url=gw.url) as c:
        c.get(path)
        c.get(path)
    reg = metrics.for_worker(gw.state.plugin_state)
    keys = list(reg.metrics["gateway_request_duration_seconds"].values)
    assert len(keys) == 1
    plugin = gw.lt.call(lambda: gw.state.snapshot.global_chain.log[0].default)
    expected = plugin.labels.get(gw.state.snapshot.config.entities["routes"][0]["id"])[0] \
        if path == "/users" else ("", "")
    assert keys[0] == expected
    if path == "/users":
        assert keys[0] is expected


def test_rate_limiting_plugin_429s_are_counted(prom_gateway: Callable[..., Gateway],
                                               prom_upstream: Upstream) -> None:
    gw = prom_gateway(doc(prom_upstream.url, [
        {"name": "rate-limiting", "config": {"hour": 2, "policy": "local"}},
        {"name": "prometheus"},
    ]))
    with httpx.Client(base_url=gw.url) as c:
        codes = [c.get("/users").status_code for _ in range(5)]
    rejected = codes.count(429)
    assert rejected >= 2  # 3 unless the hour turned between the requests
    s = scrape(gw)
    assert value(s, "gateway_rate_limit_exceeded_total", service="users",
                 route="users-list") == rejected


def test_pending_records_are_folded_within_a_second_without_a_scrape(
        prom_gateway: Callable[..., Gateway], prom_upstream: Upstream) -> None:
    import time

    from tollway.plugins.prometheus import batch

    gw = prom_gateway(doc(prom_upstream.url, [{"name": "prometheus"}]))
    with httpx.Client(base_url=gw.url) as c:
        for _ in range(3):
            c.get("/users")
    reg = metrics.for_worker(gw.state.plugin_state)

    def counted() -> float:
        return gw.lt.call(lambda: sum(reg.metrics["gateway_requests_total"].values.values()))

    assert counted() == 0  # appended by the log phase, not folded yet
    time.sleep(batch.FOLD_AFTER + 0.3)
    assert counted() == 3  # the worker's timer folded them
