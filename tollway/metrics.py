"""Per-worker metrics and the Prometheus text format (0.0.4).

Each worker process keeps one `Registry` (in its worker-lived plugin state, see `for_worker`).
Updating a metric is a dict operation on a tuple of label values — no string is built on the
request path. At scrape time the supervisor asks every worker for `Registry.export()` (plain
JSON-able data), merges them with `merge()` and renders the text with `render()`:

* counters and histograms are summed across workers (histogram buckets are stored per bucket,
  not cumulative, and made cumulative only when rendered);
* gauges are merged as each gauge declares: `sum` (e.g. open connections: the node's total) or
  `max` (e.g. a circuit breaker state, or an info gauge whose value is 1 — a breaker open on
  any worker shows as open; two config hashes show up as two series while workers disagree).

Label sets are capped per metric (`SERIES_LIMIT`): once a metric holds that many series, new
label combinations are counted in one overflow series whose label values are all `other`, so
a flood of distinct consumers or paths cannot exhaust memory.

Metric names follow DECISIONS.md #3 (`gateway_*`). Besides the prometheus plugin's request
metrics, this module offers gauges other parts of tollway set:

    set_circuit_breaker_state(registry, service, CIRCUIT_OPEN)
    set_upstream_target_health(registry, upstream, target, address, "healthy")
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "CIRCUIT_CLOSED",
    "CIRCUIT_HALF_OPEN",
    "CIRCUIT_OPEN",
    "CONTENT_TYPE",
    "DURATION_BUCKETS",
    "SERIES_LIMIT",
    "Counter",
    "Gauge",
    "Histogram",
    "Registry",
    "for_worker",
    "merge",
    "render",
    "set_circuit_breaker_state",
    "set_datastore_reachable",
    "set_upstream_target_health",
    "update_node_metrics",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SERIES_LIMIT = 10_000
OVERFLOW = "other"
INF_LE = 'le="+Inf"'
# Seconds, from 1 ms to 60 s (the seed's alerts take quantiles of the request duration).
DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
WORKER_KEY = "tollway.metrics"

CIRCUIT_CLOSED, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN = 0, 1, 2
TARGET_HEALTH_STATES = ("healthchecks_off", "healthy", "unhealthy", "dns_error")

Labels = tuple[str, ...]


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str, labelnames: Sequence[str],
                 limit: int = SERIES_LIMIT) -> None:
        self.name = name
        self.help = help
        self.labelnames: Labels = tuple(labelnames)
        self.limit = limit
        self.overflow: Labels = (OVERFLOW,) * len(self.labelnames)

    def _describe(self) -> dict[str, Any]:
        return {"type": self.kind, "help": self.help, "labels": list(self.labelnames)}


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (),
                 limit: int = SERIES_LIMIT) -> None:
        super().__init__(name, help, labelnames, limit)
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels = (), amount: float = 1) -> None:
        values = self.values
        if labels in values:
            values[labels] += amount
        elif len(values) < self.limit:
            values[labels] = amount
        else:
            values[self.overflow] = values.get(self.overflow, 0) + amount

    def get(self, labels: Labels = ()) -> float:
        return self.values.get(labels, 0)

    def export(self) -> dict[str, Any]:
        d = self._describe()
        d["series"] = [[list(k), v] for k, v in self.values.items()]
        return d


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (),
                 limit: int = SERIES_LIMIT, aggregate: str = "sum") -> None:
        super().__init__(name, help, labelnames, limit)
        if aggregate not in ("sum", "max"):
            raise ValueError("aggregate must be 'sum' or 'max'")
        self.aggregate = aggregate
        self.values: dict[Labels, float] = {}

    def set(self, labels: Labels, value: float) -> None:
        values = self.values
        if labels not in values and len(values) >= self.limit:
            labels = self.overflow
        values[labels] = value

    def inc(self, labels: Labels = (), amount: float = 1) -> None:
        values = self.values
        if labels not in values and len(values) >= self.limit:
            labels = self.overflow
        values[labels] = values.get(labels, 0) + amount

    def remove(self, labels: Labels) -> None:
        self.values.pop(labels, None)

    def clear(self) -> None:
        self.values.clear()

    def get(self, labels: Labels = ()) -> float | None:
        return self.values.get(labels)

    def export(self) -> dict[str, Any]:
        d = self._describe()
        d["aggregate"] = self.aggregate
        d["series"] = [[list(k), v] for k, v in self.values.items()]
        return d


class Histogram(_Metric):
    """Per series a list: one count per bucket (not cumulative), the +Inf bucket, the sum."""

    kind = "histogram"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (),
                 buckets: Sequence[float] = DURATION_BUCKETS,
                 limit: int = SERIES_LIMIT) -> None:
        super().__init__(name, help, labelnames, limit)
        self.buckets: tuple[float, ...] = tuple(sorted(float(b) for b in buckets))
        self.width = len(self.buckets) + 2
        self.values: dict[Labels, list[float]] = {}

    def series(self, labels: Labels) -> list[float]:
        """The list `observe` updates for `labels` (made, or the overflow series when the
        limit is reached). Series are never removed, so a caller may keep the list and
        update it as `observe` does (the prometheus plugin does, per route)."""
        series = self.values.get(labels)
        if series is None:
            if len(self.values) >= self.limit:
                labels = self.overflow
                series = self.values.get(labels)
            if series is None:
                series = self.values[labels] = [0] * self.width
        return series

    def observe(self, labels: Labels, value: float) -> None:
        series = self.values.get(labels)
        if series is None:
            series = self.series(labels)
        series[bisect_left(self.buckets, value)] += 1
        series[-1] += value

    def export(self) -> dict[str, Any]:
        d = self._describe()
        d["buckets"] = list(self.buckets)
        d["series"] = [[list(k), list(v)] for k, v in self.values.items()]
        return d


class Registry:
    """The metrics of one worker. `counter`/`gauge`/`histogram` return the existing metric of
    that name (so every plugin instance and every config snapshot share it)."""

    def __init__(self) -> None:
        self.metrics: dict[str, Counter | Gauge | Histogram] = {}
        # run before the metrics are read: writers that batch their updates fold them here
        self.before_export: list[Callable[[], None]] = []

    def _get(self, cls: type, name: str, help: str, labelnames: Sequence[str],
             **kw: Any) -> Any:
        metric = self.metrics.get(name)
        if metric is None:
            metric = self.metrics[name] = cls(name, help, labelnames, **kw)
        elif type(metric) is not cls or metric.labelnames != tuple(labelnames):
            raise ValueError(f"metric {name} already registered with another type or labels")
        return metric

    def counter(self, name: str, help: str, labelnames: Sequence[str] = (),
                limit: int = SERIES_LIMIT) -> Counter:
        metric: Counter = self._get(Counter, name, help, labelnames, limit=limit)
        return metric

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = (),
              limit: int = SERIES_LIMIT, aggregate: str = "sum") -> Gauge:
        metric: Gauge = self._get(Gauge, name, help, labelnames, limit=limit,
                                  aggregate=aggregate)
        return metric

    def histogram(self, name: str, help: str, labelnames: Sequence[str] = (),
                  buckets: Sequence[float] = DURATION_BUCKETS,
                  limit: int = SERIES_LIMIT) -> Histogram:
        metric: Histogram = self._get(Histogram, name, help, labelnames, buckets=buckets,
                                      limit=limit)
        return metric

    def export(self) -> dict[str, dict[str, Any]]:
        """JSON-able samples of every metric (what a worker sends the supervisor)."""
        for fold in self.before_export:
            fold()
        return {name: m.export() for name, m in self.metrics.items()}

    def render(self) -> str:
        return render(self.export())


def for_worker(worker: dict[str, Any]) -> Registry:
    """The registry kept in a worker's long-lived state (`BuildContext.worker`,
    `ServerState.plugin_state`): it outlives config snapshots."""
    reg = worker.get(WORKER_KEY)
    if reg is None:
        reg = worker[WORKER_KEY] = Registry()
    assert isinstance(reg, Registry)
    return reg


# -- gauges for other parts of tollway --------------------------------------------------------

def circuit_breaker_gauge(registry: Registry) -> Gauge:
    return registry.gauge("gateway_circuit_breaker_state",
                          "Circuit breaker state per service: 0 closed, 1 open, 2 half-open",
                          ("service",), aggregate="max")


def set_circuit_breaker_state(registry: Registry, service: str, state: int) -> None:
    circuit_breaker_gauge(registry).set((service,), state)


def upstream_health_gauge(registry: Registry) -> Gauge:
    return registry.gauge(
        "gateway_upstream_target_health",
        "Health of an upstream target: 1 for its current state, 0 for the others",
        ("upstream", "target", "address", "state"), aggregate="max")


def set_upstream_target_health(registry: Registry, upstream: str, target: str, address: str,
                               state: str) -> None:
    if state not in TARGET_HEALTH_STATES:
        raise ValueError(f"state must be one of {', '.join(TARGET_HEALTH_STATES)}")
    gauge = upstream_health_gauge(registry)
    for s in TARGET_HEALTH_STATES:
        gauge.set((upstream, target, address, s), 1 if s == state else 0)


def set_datastore_reachable(registry: Registry, reachable: bool) -> None:
    """Whether the node can reach its config database (1) or not (0); set by the
    supervisor, only on nodes with a database (Kong's `kong_datastore_reachable`)."""
    registry.gauge("gateway_datastore_reachable",
                   "Whether the config database is reachable (1) or not (0)",
                   aggregate="max").set((), 1 if reachable else 0)


# -- merging and rendering ---------------------------------------------------------------------

def merge(exports: Iterable[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Merge several `Registry.export()` results (one per worker) into one."""
    out: dict[str, dict[str, Any]] = {}
    acc: dict[str, dict[tuple[str, ...], Any]] = {}
    for export in exports:
        for name, m in export.items():
            kind = m["type"]
            if name not in out:
                out[name] = {k: v for k, v in m.items() if k != "series"}
                acc[name] = {}
            elif (out[name]["type"] != kind or out[name]["labels"] != m["labels"]
                  or out[name].get("buckets") != m.get("buckets")):
                continue  # inconsistent across workers (mid-upgrade): keep the first shape
            series = acc[name]
            for labels, value in m["series"]:
                key = tuple(labels)
                have = series.get(key)
                if have is None:
                    series[key] = list(value) if kind == "histogram" else value
                elif kind == "histogram":
                    series[key] = [a + b for a, b in zip(have, value, strict=True)]
                elif kind == "gauge" and out[name].get("aggregate") == "max":
                    series[key] = max(have, value)
                else:
                    series[key] = have + value
    for name, m in out.items():
        m["series"] = [[list(k), v] for k, v in acc[name].items()]
    return out


def fmt_number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{escape_label(str(v))}"' for n, v in zip(names, values, strict=False)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def render(metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """Prometheus text format 0.0.4; metrics sorted by name, series by label values."""
    lines: list[str] = []
    for name in sorted(metrics):
        m = metrics[name]
        kind = m["type"]
        names = m["labels"]
        lines.append(f"# HELP {name} {escape_help(m['help'])}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in sorted(m["series"], key=lambda s: [str(x) for x in s[0]]):
            if kind != "histogram":
                lines.append(f"{name}{_labels(names, labels)} {fmt_number(value)}")
                continue
            cumulative = 0
            for bound, count in zip(m["buckets"], value, strict=False):
                cumulative += count
                le = f'le="{fmt_number(float(bound))}"'
                lines.append(f"{name}_bucket{_labels(names, labels, le)} "
                             f"{fmt_number(cumulative)}")
            cumulative += value[-2]
            lines.append(f"{name}_bucket{_labels(names, labels, INF_LE)} "
                         f"{fmt_number(cumulative)}")
            lines.append(f"{name}_sum{_labels(names, labels)} {fmt_number(value[-1])}")
            lines.append(f"{name}_count{_labels(names, labels)} {fmt_number(cumulative)}")
    return "\n".join(lines) + "\n" if lines else ""


def update_node_metrics(registry: Registry, connections: Mapping[str, int],
                        config_hash: str) -> None:
    """A worker's node-level gauges, refreshed when it is scraped: connections by state
    (summed over workers: the node's totals; `accepted` and `handled` only grow, as nginx's
    counters that Kong exports as gauges) and the hash of the config it serves (value 1;
    several series while workers or nodes disagree — config drift)."""
    conns = registry.gauge("gateway_connections", "Client connections by state",
                           ("state",), aggregate="sum")
    for state, value in connections.items():
        conns.set((state,), value)
    info = registry.gauge("gateway_config_hash_info",
                          "Hash of the configuration being served (value 1)", ("hash",),
                          aggregate="max")
    info.clear()
    info.set((config_hash,), 1)
