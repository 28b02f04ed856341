"""prometheus: count every request the plugin applies to, in the worker's metric registry.

Only the log phase runs per request, and it only touches dicts: the (service, route) label
tuples are precomputed per route when the snapshot is built, method and status strings come
from tables, and nothing is formatted until `/metrics` is scraped (`tollway.metrics.render`).

Exported (names per DECISIONS.md #3; Kong's equivalents in brackets):

* `gateway_requests_total{service,route,method,status,consumer}` [kong_http_requests_total]
  — `status_code_metrics`; `consumer` is the consumer's username (else its id) when
  `per_consumer` is on, else empty (Prometheus treats an empty label as absent);
* `gateway_request_duration_seconds{service,route}` [kong_request_latency_ms] — from the
  request head's arrival to the log phase; `gateway_upstream_duration_seconds{service,route}`
  [kong_upstream_latency_ms] — from handing the request to an upstream connection to the
  upstream's response head; both `latency_metrics`;
* `gateway_bandwidth_bytes_total{service,route,direction}` [kong_bandwidth_bytes] —
  `bandwidth_metrics`; body bytes (ingress: request body, egress: response body);
* `gateway_rate_limit_exceeded_total{service,route}` — requests the rate-limiting plugin
  answered with 429 (it sets `req.ctx["rate_limit_exceeded"]`).

Labels: `service` is the service name or host, `route` the route name or id (Kong's); a
request that matched no route (a 404 counted by a global prometheus) has both empty.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from tollway import metrics
from tollway.plugins.base import BuildContext, Plugin
from tollway.plugins.prometheus.schema import config_schema

NO_ROUTE: tuple[str, str] = ("", "")
# Request methods are client-chosen tokens: anything else is one `other` series.
METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH",
                                   "OPTIONS", "CONNECT", "TRACE")}
STATUSES = {code: str(code) for code in range(100, 600)}
# No response at all: the client went away first (nginx logs that as 499).
STATUSES[0] = "499"

REQUESTS = "gateway_requests_total"
REQUEST_DURATION = "gateway_request_duration_seconds"
UPSTREAM_DURATION = "gateway_upstream_duration_seconds"
BANDWIDTH = "gateway_bandwidth_bytes_total"
RATE_LIMITED = "gateway_rate_limit_exceeded_total"


RouteLabels = tuple[tuple[str, str], tuple[str, ...], tuple[str, ...]]
# per route: its labels, then its request and upstream duration series (made on first use)
Cell = list[Any]
NO_ROUTE_LABELS: RouteLabels = (NO_ROUTE, (*NO_ROUTE, "ingress"), (*NO_ROUTE, "egress"))


def route_labels(ctx: BuildContext) -> dict[str, RouteLabels]:
    """Per route id: (service, route), plus the same with `ingress` / `egress` appended."""
    services = {s["id"]: s for s in ctx.entities("services")}
    out: dict[str, RouteLabels] = {}
    for r in ctx.entities("routes"):
        ref = r.get("service")
        svc = services.get(ref["id"]) if isinstance(ref, dict) else None
        sr = ((svc.get("name") or svc.get("host") or "") if svc else "",
              r.get("name") or r["id"])
        out[r["id"]] = (sr, (*sr, "ingress"), (*sr, "egress"))
    return out


def register(registry: metrics.Registry) -> dict[str, Any]:
    sr = ("service", "route")
    return {
        REQUESTS: registry.counter(
            REQUESTS, "HTTP requests by service, route, method, status and consumer",
            (*sr, "method", "status", "consumer")),
        REQUEST_DURATION: registry.histogram(
            REQUEST_DURATION, "Time from the request's arrival to the end of its response, "
            "in seconds", sr),
        UPSTREAM_DURATION: registry.histogram(
            UPSTREAM_DURATION, "Time from sending the request upstream to the upstream's "
            "response head, in seconds", sr),
        BANDWIDTH: registry.counter(
            BANDWIDTH, "Body bytes by service, route and direction (ingress, egress)",
            (*sr, "direction")),
        RATE_LIMITED: registry.counter(
            RATE_LIMITED, "Requests rejected by rate limiting (429)", sr),
    }


class PrometheusPlugin(Plugin):
    name = "prometheus"
    priority = 13
    version = "1.0.0"
    config_schema = config_schema

    def __init__(self, config: dict[str, Any], entity: dict[str, Any],
                 ctx: BuildContext | None = None) -> None:
        super().__init__(config, entity, ctx)
        c = self.ctx
        self.labels: dict[str, RouteLabels] = c.once("prometheus:labels", lambda: route_labels(c))
        registry = metrics.for_worker(c.worker)
        m = register(registry)
        self.per_consumer = config.get("per_consumer") is True
        on = {k: config.get(k) is not False
              for k in ("status_code_metrics", "latency_metrics", "bandwidth_metrics")}
        self.requests = m[REQUESTS] if on["status_code_metrics"] else None
        self.request_duration = m[REQUEST_DURATION] if on["latency_metrics"] else None
        self.upstream_duration = m[UPSTREAM_DURATION] if on["latency_metrics"] else None
        self.bandwidth = m[BANDWIDTH] if on["bandwidth_metrics"] else None
        self.rate_limited = m[RATE_LIMITED]
        self.req_buckets = m[REQUEST_DURATION].buckets
        self.up_buckets = m[UPSTREAM_DURATION].buckets
        # per route id: its labels and its duration series (see metrics.Histogram.series)
        self.cells: dict[str | None, Cell] = {}

    def _cell(self, route_id: str | None) -> Cell:
        labels = (self.labels.get(route_id, NO_ROUTE_LABELS) if route_id is not None
                  else NO_ROUTE_LABELS)
        req_d = self.request_duration
        # the upstream series is made by the first request that reached an upstream (a
        # route whose requests never do exports none, as with observe)
        cell: Cell = [labels, req_d.series(labels[0]) if req_d is not None else None, None]
        self.cells[route_id] = cell
        return cell

    def log(self, req: Any) -> None:
        # Counter.inc and Histogram.observe inlined for series that exist already (every
        # request after a route's first): this runs on every request of every route.
        match = req.match
        route_id = match.route["id"] if match is not None else None
        cell = self.cells.get(route_id)
        if cell is None:
            cell = self._cell(route_id)
        labels, req_series, up_series = cell
        sr = labels[0]
        requests = self.requests
        if requests is not None:
            consumer = ""
            if self.per_consumer:
                c = req.consumer
                if c is not None:
                    consumer = c.get("username") or c["id"]
            status = req.status
            key = (sr[0], sr[1], METHODS.get(req.method, "other"),
                   STATUSES.get(status) or str(status), consumer)
            values = requests.values
            if key in values:
                values[key] += 1
            else:
                requests.inc(key)
        if req_series is not None:
            value = req.loop.time() - req.t_start
            req_series[bisect_left(self.req_buckets, value)] += 1
            req_series[-1] += value
            t_response = req.t_response
            if t_response and self.upstream_duration is not None:
                if up_series is None:
                    up_series = cell[2] = self.upstream_duration.series(sr)
                value = t_response - req.t_upstream
                up_series[bisect_left(self.up_buckets, value)] += 1
                up_series[-1] += value
        bandwidth = self.bandwidth
        if bandwidth is not None:
            values = bandwidth.values
            ingress, egress = labels[1], labels[2]
            if ingress in values and egress in values:
                values[ingress] += req.req_size
                values[egress] += req.resp_size
            else:
                bandwidth.inc(ingress, req.req_size)
                bandwidth.inc(egress, req.resp_size)
        ctx = req._ctx
        if ctx is not None and ctx.get("rate_limit_exceeded"):
            self.rate_limited.inc(sr)

