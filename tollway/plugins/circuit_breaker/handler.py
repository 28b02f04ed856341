"""circuit-breaker: stops calling a failing upstream and answers 503 at once instead.

One breaker per service (the request's service; a route-scoped plugin keeps one per route,
named after the route), shared by every worker of the node through a node table
(`table.py`, `<prefix>/shm/circuit-breaker.bin`) and listed/forced by the Admin API
(`GET /status/circuit-breaker`, `POST /status/circuit-breaker/{service}`).

* access: an open breaker answers 503 with a JSON body naming the service and `Retry-After`,
  without touching the upstream; half-open lets `half_open_probes` probes through;
* log: the exchange is counted when it reached (or tried to reach) the upstream: a failure
  is a 5xx status — the upstream's, or the gateway's 502/503/504 for a connection error,
  timeout or failed name resolution; the breaker's own 503 and replies of other plugins are
  not calls;
* `gateway_circuit_breaker_state{service}`: 0 closed, 1 open, 2 half-open, read from the
  node table when scraped (so a manual override shows without traffic).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tollway import metrics
from tollway.plugins.base import BuildContext, Plugin
from tollway.plugins.circuit_breaker import breaker
from tollway.plugins.circuit_breaker.schema import config_schema
from tollway.plugins.circuit_breaker.table import NodeTable, live_gauge, node_table

NAME = "circuit-breaker"
TABLE = "circuit-breaker"
log = logging.getLogger("tollway.plugins.circuit_breaker")

# fail_reason values (tollway/dataplane/proxy.py) that mean the upstream was tried and failed
UPSTREAM_FAILURES = frozenset({
    "name resolution failed", "upstream timed out", "connection refused",
    "upstream closed the connection", "invalid response from upstream",
    "upstream closed the connection mid-response", "error",
})


def open_table(worker: dict[str, Any], prefix: Path | None) -> NodeTable:
    return node_table(worker, prefix, TABLE, breaker.SIZE)


def gauge_values(table: NodeTable) -> dict[tuple[str, ...], float]:
    return {(name,): breaker.Record.unpack(payload).state for name, payload in table.items()}


class CircuitBreaker(Plugin):
    name = NAME
    # after ip-restriction (990) and request-size-limiting (951), before rate-limiting (910):
    # a request the breaker rejects does not use up the client's rate limit
    priority = 915
    version = "1.0.0"
    config_schema = config_schema
    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, config: dict[str, Any], entity: dict[str, Any],
                 ctx: BuildContext | None = None) -> None:
        super().__init__(config, entity, ctx)
        self.settings = breaker.Settings(
            failure_threshold=float(config["failure_threshold"]),
            minimum_calls=config["minimum_calls"], window_size=float(config["window_size"]),
            cooldown=float(config["cooldown"]), half_open_probes=config["half_open_probes"])
        self.route_name = _route_name(entity, self.ctx)
        if self.ctx.offline:
            return  # only checking a config: no table, no file
        settings = self.ctx.settings
        prefix: Path | None = settings.prefix if settings is not None else None
        self.table = open_table(self.ctx.worker, prefix)
        live_gauge(metrics.circuit_breaker_gauge(metrics.for_worker(self.ctx.worker)),
                   lambda: gauge_values(self.table))
        # list the breakers this plugin will keep before any traffic
        for name in _known_names(entity, self.ctx, self.route_name):
            self._load(name)

    def breaker_name(self, req: Any) -> str:
        if self.route_name is not None:
            return self.route_name
        svc = req.service_entity or {}
        return str(svc.get("name") or svc.get("id") or "unknown")

    def _load(self, name: str) -> tuple[int, breaker.Record]:
        """(offset, record) for `name`, created closed when absent (lock held by caller or
        not needed: creation takes the lock)."""
        table = self.table
        now = self.clock()
        with table.locked():
            off = table.find(name)
            if off is None:
                rec = breaker.Record(since=now)
                rec.configure(self.settings)
                off = table.ensure(name, rec.pack())
            else:
                rec = breaker.Record.unpack(table.read(off))
                if rec.failure_threshold != self.settings.failure_threshold or \
                        rec.cooldown != self.settings.cooldown or \
                        rec.window_size != self.settings.window_size or \
                        rec.minimum_calls != self.settings.minimum_calls or \
                        rec.half_open_probes != self.settings.half_open_probes:
                    rec.configure(self.settings)
                    table.write(off, rec.pack())
        return off, rec

    def access(self, req: Any) -> None:
        name = self.breaker_name(req)
        table = self.table
        off = table.find(name)
        if off is None:
            off, _ = self._load(name)
        # fast path: a closed breaker in auto mode (the first two bytes) needs no lock
        if table.buf[off] == breaker.CLOSED and table.buf[off + 1] == breaker.AUTO:
            req.ctx[NAME] = (name, off, False)
            return
        now = self.clock()
        with table.locked():
            rec = breaker.Record.unpack(table.read(off))
            before = rec.state
            allowed, probe, retry_after = breaker.admit(rec, self.settings, now)
            table.write(off, rec.pack())
        if rec.state != before:
            log.warning("circuit breaker %s: %s -> %s (%s)", name,
                        breaker.STATE_NAMES[before], breaker.STATE_NAMES[rec.state], rec.reason)
        if allowed:
            req.ctx[NAME] = (name, off, probe)
            return
        req.exit(503, {"message": f"Service '{name}' is unavailable: circuit breaker open",
                       "service": name, "state": breaker.STATE_NAMES[rec.state],
                       "retry_after": retry_after},
                 {"Retry-After": str(retry_after)})

    def log(self, req: Any) -> None:
        mine = req.ctx.get(NAME)
        if mine is None:
            return  # rejected by the breaker, or an earlier plugin answered
        name, off, probe = mine
        reason = req.fail_reason
        if not req.t_upstream and reason not in UPSTREAM_FAILURES:
            # a later plugin answered, or the client left before the upstream was called:
            # not a call; a probe gives its place back
            if probe:
                with self.table.locked():
                    rec = breaker.Record.unpack(self.table.read(off))
                    rec.in_flight = max(0, rec.in_flight - 1)
                    self.table.write(off, rec.pack())
            return
        failed = req.status >= 500 or reason in UPSTREAM_FAILURES
        now = self.clock()
        with self.table.locked():
            rec = breaker.Record.unpack(self.table.read(off))
            changed = breaker.record(rec, self.settings, now, failed, probe)
            self.table.write(off, rec.pack())
        if changed is not None:
            log.warning("circuit breaker %s: %s (%s)", name, changed, rec.reason)


def _route_name(entity: dict[str, Any], ctx: BuildContext) -> str | None:
    route = entity.get("route")
    if not route:
        return None
    rid = route.get("id") if isinstance(route, dict) else route
    for r in ctx.entities("routes"):
        if r.get("id") == rid:
            return str(r.get("name") or rid)
    return str(rid)


def _known_names(entity: dict[str, Any], ctx: BuildContext, route_name: str | None
                 ) -> list[str]:
    if route_name is not None:
        return [route_name]
    service = entity.get("service")
    sid = service.get("id") if isinstance(service, dict) else service
    return [str(s.get("name") or s.get("id")) for s in ctx.entities("services")
            if sid is None or s.get("id") == sid]
