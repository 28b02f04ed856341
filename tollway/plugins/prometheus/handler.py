"""prometheus: count every request the plugin applies to, in the worker's metric registry.

Only the log phase runs per request, and it only appends one tuple to its route's cell: the
(service, route) label tuples are precomputed per route, the records are folded into the
metrics in bulk (`batch.py`, before any read of the registry), and nothing is formatted until
`/metrics` is scraped (`tollway.metrics.render`).

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

from typing import Any

from tollway import metrics
from tollway.plugins.base import BuildContext, Plugin
from tollway.plugins.prometheus import batch
from tollway.plugins.prometheus.batch import METHODS, STATUSES, Cell
from tollway.plugins.prometheus.schema import config_schema

__all__ = ["METHODS", "STATUSES", "PrometheusPlugin"]

NO_ROUTE: tuple[str, str] = ("", "")

REQUESTS = "gateway_requests_total"
REQUEST_DURATION = "gateway_request_duration_seconds"
UPSTREAM_DURATION = "gateway_upstream_duration_seconds"
BANDWIDTH = "gateway_bandwidth_bytes_total"
RATE_LIMITED = "gateway_rate_limit_exceeded_total"


RouteLabels = tuple[tuple[str, str], tuple[str, ...], tuple[str, ...]]
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
        # per route id: its labels, duration series and pending records (batch.Cell)
        self.cells: dict[str | None, Cell] = {}
        self.batch = batch.for_worker(c.worker, registry)

    def _cell(self, route_id: str | None) -> Cell:
        labels = (self.labels.get(route_id, NO_ROUTE_LABELS) if route_id is not None
                  else NO_ROUTE_LABELS)
        req_d = self.request_duration
        # the upstream series is made by the first request that reached an upstream (a
        # route whose requests never do exports none, as with observe)
        cell: Cell = [labels, req_d.series(labels[0]) if req_d is not None else None, None,
                      self, []]
        self.cells[route_id] = cell
        return cell

    def log(self, req: Any) -> None:
        match = req.match
        route_id = match.route["id"] if match is not None else None
        cell = self.cells.get(route_id)
        if cell is None:
            cell = self._cell(route_id)
        consumer = ""
        if self.per_consumer:
            c = req.consumer
            if c is not None:
                consumer = c.get("username") or c["id"]
        t_response = req.t_response
        ctx = req._ctx
        pending = cell[4]
        if not pending:
            self.batch.mark(cell)
        pending.append((req.method, req.status, consumer, req.loop.time() - req.t_start,
                        t_response - req.t_upstream if t_response else None,
                        req.req_size, req.resp_size,
                        ctx.get("rate_limit_exceeded") if ctx is not None else None))
        if len(pending) >= batch.FOLD_EVERY:
            batch.fold_cell(cell)
