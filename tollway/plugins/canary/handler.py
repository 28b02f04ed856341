"""canary: sends a growing share of clients to a canary upstream, rolls back by itself.

* access: the current step's percent (from the rollout's start and `steps`; 0 once rolled
  back) decides the side. A client's side is sticky: its hash key (`hash_on`: IP, header or
  cookie) maps to a point in [0, 100); points below the percent go to the canary, so a
  client on the canary stays there as the percent grows. The request is then balanced over
  that upstream (`req.set_upstream`);
* log: the exchange's outcome (5xx, timeout, connection error) and latency are counted for
  its side in the node table; once the canary has `min_samples` requests, an error rate more
  than `max_error_rate_increase` points above stable's, or a p95 more than
  `max_latency_ratio` times stable's (and `min_latency_increase` ms more), rolls it back for
  good: every request goes to stable and the reason is recorded (Admin API
  `GET /status/canary`, log, metrics);
* `gateway_canary_weight{canary}` (percent sent to the canary now) and
  `gateway_canary_rolled_back{canary}`, read from the node table when scraped.

The rollout (its start, statistics, rollback) is reset when the plugin's id, upstreams or
steps change; any other config change keeps it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import struct
import time
import zlib
from collections.abc import Callable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from tollway import metrics
from tollway.plugins.base import BuildContext, Plugin
from tollway.plugins.canary import state
from tollway.plugins.canary.schema import config_schema
from tollway.plugins.circuit_breaker.handler import UPSTREAM_FAILURES
from tollway.plugins.circuit_breaker.table import NodeTable, live_gauge, node_table

NAME = "canary"
TABLE = "canary"
log = logging.getLogger("tollway.plugins.canary")


def open_table(worker: dict[str, Any], prefix: Path | None) -> NodeTable:
    return node_table(worker, prefix, TABLE, state.SIZE)


def _gauges(table: NodeTable, clock: Callable[[], float]
            ) -> tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], float]]:
    now = clock()
    weights: dict[tuple[str, ...], float] = {}
    rolled: dict[tuple[str, ...], float] = {}
    for name, payload in table.items():
        rec = state.Record.unpack(payload)
        weights[(name,)] = state.weight(rec, now)
        rolled[(name,)] = float(rec.rolled_back)
    return weights, rolled


class Canary(Plugin):
    name = NAME
    # late in access, after authentication, rate limiting and transformations (>= 800): the
    # side is chosen for requests that will be proxied
    priority = 790
    version = "1.0.0"
    config_schema = config_schema
    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, config: dict[str, Any], entity: dict[str, Any],
                 ctx: BuildContext | None = None) -> None:
        super().__init__(config, entity, ctx)
        self.stable = config["stable_upstream"]
        self.canary = config["canary_upstream"]
        self.steps = [(float(s["percent"]), float(s["duration"])) for s in config["steps"]]
        self.hash_on = config["hash_on"]
        self.header = config["hash_on_header"]
        self.cookie = config["hash_on_cookie"]
        self.thresholds = state.Thresholds(float(config["max_error_rate_increase"]),
                                           float(config["max_latency_ratio"]),
                                           config["min_samples"],
                                           float(config["min_latency_increase"]))
        self.key = _canary_name(entity, self.ctx)
        fp = json.dumps([self.id, self.stable, self.canary, self.steps]).encode()
        self.fingerprint = int.from_bytes(hashlib.blake2b(fp, digest_size=8).digest(), "little")
        if self.ctx.offline:
            return
        settings = self.ctx.settings
        prefix: Path | None = settings.prefix if settings is not None else None
        self.table = table = open_table(self.ctx.worker, prefix)
        with table.locked():
            off = table.find(self.key)
            rec = state.Record.unpack(table.read(off)) if off is not None else None
            if rec is None or rec.fingerprint != self.fingerprint:
                fresh = state.Record(self.fingerprint, self.clock(), self.steps, self.stable,
                                     self.canary)
                if off is None:
                    off = table.ensure(self.key, fresh.pack())
                else:
                    table.write(off, fresh.pack())
        assert off is not None
        self.off: int = off
        reg = metrics.for_worker(self.ctx.worker)
        weight = reg.gauge("gateway_canary_weight",
                           "Percent of requests a canary plugin sends to its canary upstream",
                           ("canary",), aggregate="max")
        rolled = reg.gauge("gateway_canary_rolled_back",
                           "1 when a canary rolled back by itself (or by hand), else 0",
                           ("canary",), aggregate="max")
        clock = self.clock
        live_gauge(weight, lambda: _gauges(table, clock)[0])
        live_gauge(rolled, lambda: _gauges(table, clock)[1])

    def _point(self, req: Any) -> float:
        """The client's point in [0, 100)."""
        key: str | None = None
        if self.hash_on == "header":
            key = req.get_header(self.header)
        elif self.hash_on == "cookie":
            raw = req.get_header("cookie")
            if raw:
                try:
                    morsel = SimpleCookie(raw).get(self.cookie)
                except Exception:  # a malformed Cookie header: fall back to the IP
                    morsel = None
                key = morsel.value if morsel is not None else None
        elif self.hash_on == "none":
            return random.random() * 100.0
        if not key:
            key = req.client_ip
        return (zlib.crc32(key.encode("utf-8", "surrogateescape")) % 10000) / 100.0

    def access(self, req: Any) -> None:
        buf = self.table.buf
        off = self.off
        if buf[off + state.ROLLED_BACK_OFF]:
            percent = 0.0
        else:
            started = struct.unpack_from("<d", buf, off + state.STARTED_OFF)[0]
            percent = state.schedule(self.steps, self.clock() - started)[1]
        side = state.CANARY if percent > 0 and self._point(req) < percent else state.STABLE
        req.set_upstream(self.canary if side == state.CANARY else self.stable)
        req.ctx[NAME] = side

    def log(self, req: Any) -> None:
        side = req.ctx.get(NAME)
        if side is None:
            return
        reason = req.fail_reason
        if not req.t_upstream and reason not in UPSTREAM_FAILURES:
            return  # not proxied (a later plugin answered, the client left)
        failed = req.status >= 500 or reason in UPSTREAM_FAILURES
        latency_ms = (req.loop.time() - req.t_start) * 1000.0
        table = self.table
        with table.locked():
            rec = state.Record.unpack(table.read(self.off))
            if rec.fingerprint != self.fingerprint:
                return  # another config's rollout owns the record now
            s = rec.sides[side]
            s.requests += 1
            s.errors += failed
            s.hist[state.bucket(latency_ms)] += 1
            why = None
            if side == state.CANARY and not rec.rolled_back:
                why = state.judge(rec, self.thresholds)
                if why is not None:
                    rec.rolled_back, rec.rolled_back_at, rec.reason = True, self.clock(), why
            table.write(self.off, rec.pack())
        if why is not None:
            log.warning("canary %s rolled back to %s: %s", self.key, self.stable, why)


def _canary_name(entity: dict[str, Any], ctx: BuildContext) -> str:
    """The route's name for a route-scoped plugin, else the service's, else the plugin id."""
    for field, collection in (("route", "routes"), ("service", "services")):
        ref = entity.get(field)
        if ref:
            rid = ref.get("id") if isinstance(ref, dict) else ref
            for e in ctx.entities(collection):
                if e.get("id") == rid:
                    return str(e.get("name") or rid)
            return str(rid)
    return f"plugin:{entity.get('id')}"
