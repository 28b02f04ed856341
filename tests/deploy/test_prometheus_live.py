"""A real Prometheus (Debian's `prometheus`) scrapes a running `tollway start` under traffic,
with deploy/prometheus/alerts.yml loaded. Every query of the Grafana dashboard, every alert
expression and the prometheus-adapter rule must return data carrying the labels their panels,
legends and annotations use.

The node's config gives every gauge the alerts read something to report: a SQLite store
(datastore reachability), an upstream entity with a target (target health), a
circuit-breaker on the failing service, and rate limiting on the real Redis and on a Redis
port nothing listens on (the store-degraded gauge). A query on a metric this node still
does not export is skipped with the metric named, never silently passed."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from deploy_support import DEPLOY, require_tools
from node_support import Node, Upstream, free_port, wait_until

DASHBOARD = DEPLOY / "grafana" / "tollway.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ADAPTER = DEPLOY / "prometheus-adapter" / "config.yaml"
GRAFANA_VARS = {"$__rate_interval": "15s", "$job": "tollway", "${job}": "tollway"}
LEGEND_LABEL = re.compile(r"\{\{\s*\$?(?:labels\.)?([a-z_]+)\s*\}\}")
ANNOTATION_LABEL = re.compile(r"\$labels\.([a-z_]+)")
# `x > 0.05` -> `x > bool 0.05`: the alert's expression then returns its series whether or not
# the condition holds today, labels intact (only `bool` comparisons drop nothing).
COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)(?!\s*bool)(?=\s*[\d(])")


def _dashboard_queries() -> list[tuple[str, str, set[str]]]:
    doc = json.loads(DASHBOARD.read_text())
    out = []
    for panel in doc["panels"]:
        for t in panel["targets"]:
            expr = t["expr"]
            for k, v in GRAFANA_VARS.items():
                expr = expr.replace(k, v)
            labels = set(LEGEND_LABEL.findall(t.get("legendFormat", "")))
            out.append((f"panel {panel['title']!r} {t['refId']}", expr, labels))
    return out


def _alert_queries() -> list[tuple[str, str, set[str]]]:
    out = []
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            text = " ".join(str(v) for v in rule.get("annotations", {}).values())
            labels = set(ANNOTATION_LABEL.findall(text))
            out.append((f"alert {rule['alert']}", COMPARISON.sub(r"\1 bool", rule["expr"]),
                        labels))
    return out


def _adapter_queries() -> list[tuple[str, str, set[str]]]:
    out = []
    for rule in yaml.safe_load(ADAPTER.read_text())["rules"]:
        # What the adapter sends for `kubectl get --raw .../pods/*/gateway_requests_per_second`,
        # with `instance` standing in for `pod` (no Kubernetes here).
        expr = (rule["metricsQuery"].replace("<<.Series>>", "gateway_requests_total")
                .replace("<<.LabelMatchers>>", 'job="tollway"')
                .replace("<<.GroupBy>>", "instance"))
        out.append((f"adapter {rule['name']['as']}", expr, {"instance"}))
    return out


QUERIES = _dashboard_queries() + _alert_queries() + _adapter_queries()


class Prometheus:
    def __init__(self, workdir: Path, target: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dead_redis = 0
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [{"job_name": "tollway",
                                "static_configs": [{"targets": [target]}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: httpx.get(self.url + "/-/ready", timeout=1).status_code == 200,
                   30, what="prometheus ready")

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = httpx.get(self.url + "/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
        assert body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    require_tools("prometheus")
    work = tmp_path_factory.mktemp("prometheus-live")
    upstream = Upstream("live")
    dead_redis = free_port()  # nothing listens: fault-tolerant fallback, gauge 1
    config = {
        "_format_version": "3.0",
        "plugins": [{"name": "prometheus"}],
        "services": [
            # through an upstream entity: gateway_upstream_target_health
            {"name": "users", "host": "users-upstream", "port": upstream.port,
             "protocol": "http",
             "routes": [{"name": "users-list", "paths": ["/users"]}]},
            {"name": "limited", "url": upstream.url,
             "routes": [{"name": "limited-route", "paths": ["/limited"]}],
             "plugins": [{"name": "rate-limiting",
                          "config": {"second": 2, "policy": "local"}}]},
            {"name": "redis-limited", "url": upstream.url,
             "routes": [{"name": "redis-route", "paths": ["/redis"]}],
             "plugins": [{"name": "rate-limiting",
                          "config": {"minute": 1000, "policy": "redis",
                                     "redis_host": "127.0.0.1", "redis_port": 6379}}]},
            {"name": "redis-down", "url": upstream.url,
             "routes": [{"name": "redis-down-route", "paths": ["/redis-down"]}],
             "plugins": [{"name": "rate-limiting",
                          "config": {"minute": 1000, "policy": "redis",
                                     "redis_host": "127.0.0.1", "redis_port": dead_redis,
                                     "redis_timeout": 200}}]},
            # nothing listens on port 1: 502s for the error-rate queries
            {"name": "broken", "url": "http://127.0.0.1:1",
             "routes": [{"name": "broken-route", "paths": ["/broken"]}],
             "plugins": [{"name": "circuit-breaker"}]},
        ],
        "upstreams": [{"name": "users-upstream",
                       "targets": [{"target": f"127.0.0.1:{upstream.port}"}]}],
    }
    status_port = free_port()
    node = Node(work / "node", config=config, workers=2,
                env={"TOLLWAY_DATABASE": "sqlite",
                     "TOLLWAY_STATUS_LISTEN": f"127.0.0.1:{status_port}"}).start()
    prom = Prometheus(work / "prometheus", f"127.0.0.1:{status_port}")
    prom.dead_redis = dead_redis
    try:
        with httpx.Client(base_url=node.proxy_url, timeout=5) as client:
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                for path in ("/users", "/users", "/limited", "/broken", "/redis",
                             "/redis-down"):
                    client.get(path)
                time.sleep(0.02)
        # two more scrapes after the last request, so rate() has the whole run
        time.sleep(3)
        yield prom
    finally:
        prom.stop()
        node.stop()
        upstream.stop()


@pytest.mark.parametrize(("what", "expr", "labels"), QUERIES, ids=[q[0] for q in QUERIES])
def test_query_returns_data_with_its_labels(scraped: Prometheus, what: str, expr: str,
                                            labels: set[str]) -> None:
    result = scraped.query(expr)
    assert result, f"{what}: no data for {expr}"
    for series in result:
        missing = labels - set(series["metric"])
        assert not missing, f"{what}: series {series['metric']} lack {missing}"


def test_alert_rules_are_loaded(scraped: Prometheus) -> None:
    body = httpx.get(scraped.url + "/api/v1/rules", timeout=10).json()
    names = {r["name"] for g in body["data"]["groups"] for r in g["rules"]}
    expected = {r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"]
                for r in g["rules"]}
    assert names == expected
    assert all(g["rules"][0]["health"] != "err" for g in body["data"]["groups"])


def test_traffic_shows_in_the_breakdowns(scraped: Prometheus) -> None:
    """The panels separate what the traffic mixed: 200s, 429s and 502s per route."""
    by_status = {r["metric"]["status"] for r in
                 scraped.query('sum by (status) (gateway_requests_total{job="tollway"})')}
    assert {"200", "429", "502"} <= by_status
    limited = scraped.query('sum by (route) (gateway_rate_limit_exceeded_total)')
    assert [r["metric"]["route"] for r in limited] == ["limited-route"]


def test_rate_limit_store_degraded_marks_only_the_unreachable_redis(
        scraped: Prometheus) -> None:
    """The Redis that refuses connections is degraded (1, counting locally); the real one,
    when this machine's Redis answers, is 0."""
    series = {r["metric"]["port"]: r["value"][1] for r in
              scraped.query('gateway_rate_limit_store_degraded{job="tollway"}')}
    assert series.get(str(scraped.dead_redis)) == "1", series
    try:
        redis_up = redis.Redis(port=6379, socket_timeout=2).ping()
    except redis.RedisError:
        redis_up = False
    if redis_up:
        assert series.get("6379") == "0", series
