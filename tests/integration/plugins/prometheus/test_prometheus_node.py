"""/metrics on a real node with two workers: every request counted exactly once across the
workers, on the admin and the status listener, in a format Prometheus tools accept."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from node_support import Node, free_port
from node_support import Upstream as NodeUpstream
from prom_scrape import check_histograms, parse, total, value

N = 200


def seed_like(url: str, global_prometheus: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_format_version": "3.0",
        "services": [
            {"name": "user-service", "url": url,
             "routes": [{"name": "users", "paths": ["/api/users"]}],
             "plugins": [{"name": "prometheus", "config": {"per_consumer": True}}]},
            {"name": "order-service", "url": url,
             "routes": [{"name": "orders", "paths": ["/api/orders"]}]},
        ],
    }
    if global_prometheus:
        doc["plugins"] = [{"name": "prometheus"}]
    return doc


def fire(node: Node, path: str, n: int) -> list[int]:
    """n requests, each on its own connection (the kernel spreads them over the workers)."""
    def one(_: int) -> int:
        return httpx.get(node.proxy_url + path, timeout=10).status_code
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def test_every_request_counted_once_across_workers(
        prom_node: Callable[..., Node], prom_node_upstream: NodeUpstream) -> None:
    status_port = free_port()
    node = prom_node(config=seed_like(prom_node_upstream.url, global_prometheus=False),
                     workers=2, env={"TOLLWAY_STATUS_LISTEN": f"127.0.0.1:{status_port}"})
    assert len(node.worker_pids()) == 2
    assert fire(node, "/api/users", N) == [200] * N
    assert fire(node, "/api/orders", 10) == [200] * 10  # no prometheus on that service
    assert fire(node, "/nowhere", 5) == [404] * 5       # nor globally

    r = node.admin("GET", "/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    s = parse(r.text)
    # With one connection per request spread over two workers, a scrape that reached only
    # one worker would see about half.
    assert value(s, "gateway_requests_total", service="user-service", route="users",
                 method="GET", status="200", consumer="") == N
    assert total(s, "gateway_requests_total") == N
    assert total(s, "gateway_request_duration_seconds_count") == N
    assert total(s, "gateway_upstream_duration_seconds_count") == N
    assert check_histograms(s, "gateway_request_duration_seconds") == 1
    assert check_histograms(s, "gateway_upstream_duration_seconds") == 1
    assert value(s, "gateway_bandwidth_bytes_total", service="user-service", route="users",
                 direction="egress") > 0
    # node gauges, summed over the workers; the config hash of every worker
    assert value(s, "gateway_connections", state="accepted") >= N + 15
    hashes = [dict(ls)["hash"] for (n, ls) in s if n == "gateway_config_hash_info"]
    assert hashes == [node.status()["configuration_hash"]]

    # the status listener serves the same metrics
    st = httpx.get(f"http://127.0.0.1:{status_port}/metrics", timeout=10)
    assert st.status_code == 200
    assert st.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert total(parse(st.text), "gateway_requests_total") == N

    if shutil.which("promtool"):
        proc = subprocess.run(["promtool", "check", "metrics"], input=r.content,
                              capture_output=True, timeout=30)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_global_prometheus_counts_404s(prom_node: Callable[..., Node],
                                       prom_node_upstream: NodeUpstream) -> None:
    node = prom_node(config=seed_like(prom_node_upstream.url, global_prometheus=True),
                     workers=2)
    assert fire(node, "/nowhere", 20) == [404] * 20
    assert fire(node, "/api/orders", 30) == [200] * 30
    s = parse(node.admin("GET", "/metrics").text)
    assert value(s, "gateway_requests_total", service="", route="", method="GET",
                 status="404", consumer="") == 20
    assert value(s, "gateway_requests_total", service="order-service", route="orders",
                 method="GET", status="200", consumer="") == 30


def test_counts_survive_post_config(prom_node: Callable[..., Node],
                                    prom_node_upstream: NodeUpstream) -> None:
    doc = seed_like(prom_node_upstream.url, global_prometheus=False)
    node = prom_node(config=doc, workers=2)
    fire(node, "/api/users", 20)
    doc["services"][0]["routes"][0]["paths"].append("/v2/users")
    assert node.post_config(doc).status_code == 201
    fire(node, "/api/users", 20)
    s = parse(node.admin("GET", "/metrics").text)
    assert total(s, "gateway_requests_total", route="users") == 40


def test_metrics_404_when_the_plugin_is_not_enabled(
        prom_node: Callable[..., Node], prom_node_upstream: NodeUpstream) -> None:
    node = prom_node(config={"_format_version": "3.0"}, workers=1,
                     env={"TOLLWAY_PLUGINS": "off"})
    r = node.admin("GET", "/metrics")
    assert r.status_code == 404
    assert r.json() == {"message": "Not found"}
