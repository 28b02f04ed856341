"""Kong's rate-limiting plugin (§3.1) with the local, cluster and redis policies."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Sequence
from fcntl import LOCK_EX, LOCK_UN, flock
from operator import sub
from pathlib import Path
from typing import Any

from tollway.plugins.base import BuildContext, HeaderBlock, HeaderNames, Plugin
from tollway.plugins.rate_limiting.cluster import ClusterCounters, cluster_counters
from tollway.plugins.rate_limiting.counters import SharedCounters, key_hash, node_counters
from tollway.plugins.rate_limiting.redis_policy import (
    Backend,
    args_frame,
    backend_for,
    keys_frame,
)
from tollway.plugins.rate_limiting.schema import config_schema
from tollway.plugins.rate_limiting.windows import EXPIRATION, PERIODS, window_starts

log = logging.getLogger("tollway.plugins.rate-limiting")
_time = time.time
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
RATELIMIT_LIMIT = b"RateLimit-Limit"
RATELIMIT_REMAINING = b"RateLimit-Remaining"
RATELIMIT_RESET = b"RateLimit-Reset"
RETRY_AFTER = b"Retry-After"
CRLF = b"\r\n"
RL_REMAINING_START = RATELIMIT_REMAINING + b": "
RL_RESET_START = RATELIMIT_RESET + b": "
RETRY_AFTER_START = RETRY_AFTER + b": "
# Kong's constant tables: header names per period, built once.
X_LIMIT = {p: b"X-RateLimit-Limit-" + p.capitalize().encode() for p in PERIODS}
X_REMAINING = {p: b"X-RateLimit-Remaining-" + p.capitalize().encode() for p in PERIODS}
# (counter keys, their hashes, window ends, home-slot words for SharedCounters.counted,
# the same for SharedCounters.counted_pair when there are two windows, the keys framed
# for the redis policy's script call)
Memo = tuple[list[str], list[int], list[int], tuple[list[int], list[int]] | None,
             tuple[int, int, int, int] | None, bytes | None]
MEMO_MAX = 10_000  # identifiers remembered per second (counter keys, hashes, window ends)


def num(value: float) -> bytes:
    """A number as Lua prints it: 5 for 5.0, 2.5 stays 2.5."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).encode()


def _fk(entity: dict[str, Any], name: str) -> str:
    ref = entity.get(name)
    return ref["id"] if isinstance(ref, dict) and ref.get("id") else ZERO_UUID


class RateLimiting(Plugin):
    name = "rate-limiting"
    priority = 910
    version = "3.9.1"
    config_schema = config_schema
    protocols = ("grpc", "grpcs", "http", "https")

    def __init__(self, config: dict[str, Any], entity: dict[str, Any],
                 ctx: BuildContext | None = None) -> None:
        super().__init__(config, entity, ctx)
        ctx = self.ctx
        settings = ctx.settings
        self.periods = tuple(p for p in PERIODS if config[p] is not None)
        # The schema makes limits floats; whole ones are kept as ints, whose arithmetic and
        # %d formatting per request cost less (the values compare and print the same).
        self.limits = [int(v) if float(v).is_integer() else v
                       for v in (config[p] for p in self.periods)]
        self.windows = [EXPIRATION[p] for p in self.periods]
        self.windows_frame = args_frame(self.windows)  # (the redis policy's script call)
        self.limit_bytes = [num(v) for v in self.limits]
        self.x_limit = [X_LIMIT[p] for p in self.periods]
        self.x_remaining = [X_REMAINING[p] for p in self.periods]
        # response header lines built once: the limits never change per request
        self.limit_lines = [n + b": " + v + CRLF
                            for n, v in zip(self.x_limit, self.limit_bytes, strict=True)]
        self.rl_limit_lines = [RATELIMIT_LIMIT + b": " + v + CRLF for v in self.limit_bytes]
        self.remaining_starts = [n + b": " for n in self.x_remaining]
        # The admitted case's whole header block as one %-template per smallest-remaining
        # window: one C-level format per request instead of a loop of concatenations.
        # Only for whole limits (a fractional one is printed as Lua prints it, see num).
        self.templates: list[bytes] | None = None
        self.limits_less_one = [v - 1 for v in self.limits]
        self.n_windows = len(self.limits)
        self.limit0 = self.limits[0]  # (counted_pair's limits)
        self.limit1 = self.limits[-1]
        if all(v.__class__ is int for v in self.limits):
            per_window = b"".join(line.replace(b"%", b"%%") + start.replace(b"%", b"%%")
                                  + b"%d\r\n" for line, start in
                                  zip(self.limit_lines, self.remaining_starts, strict=True))
            self.templates = [per_window + rl.replace(b"%", b"%%")
                              + RL_REMAINING_START + b"%d\r\n" + RL_RESET_START + b"%d\r\n"
                              for rl in self.rl_limit_lines]
        # the same with Retry-After, for a rejection (two windows)
        self.rejected_templates = [t + RETRY_AFTER_START.replace(b"%", b"%%") + b"%d\r\n"
                                   for t in self.templates or ()]
        self.names = HeaderNames(n.lower() for n in (
            *self.x_limit, *self.x_remaining, RATELIMIT_LIMIT, RATELIMIT_REMAINING,
            RATELIMIT_RESET))
        self.names_rejected = HeaderNames(self.names | {RETRY_AFTER.lower()})
        # identifier -> (counter keys, their hashes, window ends, their home slots in the
        # node's table or None), for the second `memo_now`
        self.memo: dict[str, Memo] = {}
        self.memo_now = -1
        self.route_id, self.service_id = _fk(entity, "route"), _fk(entity, "service")
        self.key_prefix = f"ratelimit:{self.route_id}:{self.service_id}:"
        self.limit_by = config["limit_by"]
        self.by_consumer = self.limit_by == "consumer"
        self.header_name = config["header_name"]
        self.path = config["path"]
        self.hide = bool(config["hide_client_headers"])
        self.error_code = int(config["error_code"])
        self.error_message = config["error_message"]
        self.fault_tolerant = bool(config["fault_tolerant"])
        self.policy = config["policy"]
        self.local_policy = False  # set below once the counters exist
        self.sync_rate = config["sync_rate"]
        if self.policy == "cluster" and settings is not None and settings.database == "off":
            # Kong's schema offers only local and redis when database=off
            raise ValueError("rate-limiting: config.policy: expected one of: local, redis "
                             "(the cluster policy needs a database; database=off)")
        self.redis_host: str | None = None
        if self.policy == "redis":
            host = config["redis"]["host"]
            hosts = ctx.once("rate-limiting:hosts", lambda: _hosts(settings))
            self.redis_host = hosts.get(host.lower(), host)
        self.local: Any = None
        self.backend: Backend | None = None
        self.cluster: ClusterCounters | None = None
        if ctx.offline:
            return  # a config check: no files, no sockets
        prefix: Path | None = settings.prefix if settings is not None else None
        self.local = node_counters(prefix, ctx.worker,
                                   settings.workers if settings is not None else 2)
        self.local_policy = self.policy == "local"
        if self.policy == "redis":
            assert self.redis_host is not None
            self.backend = backend_for(ctx.worker, config["redis"], self.redis_host)
        elif self.policy == "cluster" and settings is not None:
            self.cluster = cluster_counters(ctx.worker, settings)
        local = self.local
        if (self.local_policy and self.n_windows == 2 and self.templates is not None
                and not self.hide and local.__class__ is SharedCounters):
            # The usual config (local policy, two windows, whole limits, headers shown):
            # access is the unrolled form below (the table's lock held around its words
            # when the node has several workers).
            self.q = local.q
            self.lock_fd = local.fd if local.locked else -1
            self.t0, self.t1 = self.templates
            self.l0, self.l1 = self.limits_less_one
            self.access = self._access_pair  # type: ignore[method-assign]

    # -- the request ------------------------------------------------------------------------
    def identifier(self, req: Any) -> str:
        by = self.limit_by
        ident: str | None = None
        if by == "consumer":
            ident = ((req.consumer or {}).get("id") or (req.credential or {}).get("id"))
        elif by == "credential":
            ident = (req.credential or {}).get("id")
        elif by == "service":
            ident = (req.service_entity or {}).get("id")
        elif by == "header":
            ident = req.get_header(self.header_name)
        elif by == "path":
            path = req.path
            ident = path if path == self.path else None
        return ident or req.client_ip

    def _access_pair(self, req: Any) -> None:
        """`access` for the usual config, when the request is admitted and both counters
        are live in their home slots: memo, table and headers without a call (one request
        through the chain's largest plugin ~230 bytecodes -> ~150; on a several-worker
        node the node's lock is held around the table's words, as check_and_incr holds
        it). Anything else (the first request of an identifier in a second, a collision, a
        rejection) goes the general way, after the lock is released and before anything
        is counted."""
        now = int(_time())
        if now == self.memo_now:
            consumer = req.consumer if self.by_consumer else None
            memo = self.memo.get(consumer["id"] if consumer is not None
                                 else self.identifier(req))
            if memo is not None:
                q = self.q
                w0, h0, w1, h1 = memo[4]  # type: ignore[misc]
                admitted = False
                fd = self.lock_fd
                if fd >= 0:
                    flock(fd, LOCK_EX)
                try:
                    if q[w0] == h0 and q[w1] == h1:
                        c0 = q[w0 + 2]
                        c1 = q[w1 + 2]
                        r0 = self.l0 - c0
                        r1 = self.l1 - c1
                        if r0 >= 0 and r1 >= 0:
                            q[w0 + 2] = c0 + 1
                            q[w1 + 2] = c1 + 1
                            admitted = True
                finally:
                    if fd >= 0:
                        flock(fd, LOCK_UN)
                if admitted:
                    ends = memo[2]
                    if r1 <= r0:  # ties go to the longer window
                        left = ends[1] - now
                        lines = self.t1 % (r0, r1, r1, left if left > 0 else 1)
                    else:
                        left = ends[0] - now
                        lines = self.t0 % (r0, r1, r0, left if left > 0 else 1)
                    block = (self.names, lines)
                    extra = req.resp_extra
                    if extra is None:
                        req.resp_extra = [block]
                    else:
                        extra.append(block)
                    return None
        RateLimiting.access(self, req)  # (local: never pending)
        return None

    def access(self, req: Any) -> Awaitable[None] | None:
        now = int(_time())
        consumer = req.consumer if self.by_consumer else None
        # limit_by consumer with a consumer (the usual case) without a call more
        ident = consumer["id"] if consumer is not None else self.identifier(req)
        if self.local_policy:  # the usual case, inline: memoised keys, one table update
            memo = self.memo.get(ident) if now == self.memo_now else None
            if memo is None:
                memo = self._memo(ident, now, window_starts(now))
            ends = memo[2]
            pair = memo[4]
            usages: Sequence[int] | None
            if pair is not None:
                usages = self.local.counted_pair(pair, self.limit0, self.limit1)
            else:
                slots = memo[3]
                usages = (self.local.counted(slots, memo[1], self.limits)
                          if slots is not None else None)
            if usages is None:
                usages = self.local.check_and_incr(memo[1], ends, self.limits, now)
            self.finish(req, usages, now, ends)
            return None
        starts = window_starts(now)
        periods = self.periods
        if self.policy == "redis":
            b = self.backend
            assert b is not None
            if self.sync_rate <= 0 and (not self.fault_tolerant or b.available()):
                return self._redis_incr(req, b, ident, now, starts)
            return self._redis(req, ident, now, starts)
        if self.policy == "cluster" and self.cluster is not None:
            rows = [(ident, p, starts[p], self.service_id, self.route_id,
                     starts[p] + EXPIRATION[p]) for p in periods]
            return self._cluster(req, rows, now, self._ends(starts))
        self.finish(req, self._local(ident, now, starts), now, self._ends(starts))
        return None

    async def _cluster(self, req: Any, rows: list[Any], now: int, ends: list[int]) -> None:
        assert self.cluster is not None
        try:
            usages = await self.cluster.check_and_incr(rows, self.limits, now)
        except Exception as exc:
            if not self.fault_tolerant:
                raise
            # Kong: with fault_tolerant the request goes through when the counters fail
            log.error("rate-limiting: failed to get usage: %s", exc)
            return
        self.finish(req, usages, now, ends)

    def _ends(self, starts: dict[str, int]) -> list[int]:
        """The end of each configured window (unix seconds)."""
        return [starts[p] + EXPIRATION[p] for p in self.periods]

    def _keys(self, ident: str, starts: dict[str, int]) -> list[str]:
        return self._memo(ident, starts["second"], starts)[0]

    def _memo(self, ident: str, now: int, starts: dict[str, int]) -> Memo:
        """The counter keys of `ident` at `now`, their hashes, window ends and home slots:
        built once per identifier and second (every window start is the same within a
        second)."""
        if now != self.memo_now:
            self.memo_now = now
            self.memo = {}
        hit = self.memo.get(ident)
        if hit is None:
            prefix = self.key_prefix + ident
            keys = [f"{prefix}:{starts[p] * 1000}:{p}" for p in self.periods]
            hashes = [key_hash(k) for k in keys]
            local = self.local
            pair = (local.pair_words(hashes) if local is not None and len(hashes) == 2
                    else None)
            # (access uses the home words only without the pair's)
            home = local.home_words(hashes) if local is not None and pair is None else None
            hit = (keys, hashes, [starts[p] + EXPIRATION[p] for p in self.periods], home,
                   pair, keys_frame(keys) if self.policy == "redis" else None)
            if len(self.memo) >= MEMO_MAX:
                self.memo.clear()
            self.memo[ident] = hit
        return hit

    def _local(self, ident: str, now: int, starts: dict[str, int]) -> list[int]:
        _, hashes, ends, _, _, _ = self._memo(ident, now, starts)
        usages: list[int] = self.local.check_and_incr(hashes, ends, self.limits, now)
        return usages

    def _redis_incr(self, req: Any, b: Backend, ident: str, now: int,
                    starts: dict[str, int]) -> Any:
        """The usual redis case (no sync_rate): the request joins this tick's script call
        and waits, suspended, for `_counted` to resume it."""
        memo = self.memo.get(ident) if now == self.memo_now else None
        if memo is None:
            memo = self._memo(ident, now, starts)
        waiting = req.suspend()
        b.add(memo[5], self.n_windows, self.windows_frame,  # type: ignore[arg-type]
              self._counted, (req, ident, now, memo[2], waiting))
        return waiting

    def _counted(self, call: tuple[Any, str, int, list[int], Any], usages: Any) -> None:
        """The script call's answer for one request: its usages, or the exception."""
        req, ident, now, ends, waiting = call
        if usages.__class__ is not list:
            if not self.fault_tolerant:
                waiting.fail(usages)
                return
            self.backend.failed(usages)  # type: ignore[union-attr]
            # DECISIONS #4: Redis is out; keep enforcing on this node's counters
            usages = self._local(ident, now, window_starts(now))
        try:
            self.finish(req, usages, now, ends)
        except Exception as exc:
            waiting.fail(exc)
            return
        waiting.resume()

    async def _redis(self, req: Any, ident: str, now: int, starts: dict[str, int]) -> None:
        b = self.backend
        assert b is not None
        if not self.fault_tolerant or b.available():
            keys = self._keys(ident, starts)
            try:
                if self.sync_rate > 0:
                    ends = self._ends(starts)
                    sync = b.sync(self.sync_rate)
                    usages = await sync.usages(keys, ends, now)
                    if not self.finish(req, usages, now, ends):
                        sync.incr(keys, ends)
                else:
                    ttls = self.windows
                    usages = await b.incr(keys, ttls)
                    self.finish(req, usages, now, self._ends(starts))
                b.succeeded()
                return
            except Exception as exc:
                if not self.fault_tolerant:
                    raise
                b.failed(exc)
        # DECISIONS #4: Redis is out; keep enforcing on this node's counters
        self.finish(req, self._local(ident, now, starts), now, self._ends(starts))

    def finish(self, req: Any, usages: Sequence[int], now: int, ends: list[int]) -> bool:
        """Headers and the verdict from the usages before this request (`ends`: each
        window's end, for RateLimit-Reset); True: rejected."""
        limits = self.limits
        templates = self.templates
        if templates is not None and not self.hide:
            # Admitted, the usual case, for one or two windows (most configs) in plain
            # arithmetic: timeit 1.4 -> 0.7 us against the general form below (list(map()),
            # min, index: each a C call costing more than the two subtractions).
            n = self.n_windows
            if n == 2:
                r0 = self.limits_less_one[0] - usages[0]
                r1 = self.limits_less_one[1] - usages[1]
                if r0 >= 0 and r1 >= 0:
                    if r1 <= r0:  # ties go to the longer window
                        left = ends[1] - now
                        lines = templates[1] % (r0, r1, r1, left if left > 0 else 1)
                    else:
                        left = ends[0] - now
                        lines = templates[0] % (r0, r1, r0, left if left > 0 else 1)
                    block = (self.names, lines)
                    rejected = False
                else:
                    # Rejected: the first window over its limit shows this request
                    # counted, the other its count without it (as the loop below), then
                    # Retry-After.
                    if r0 < 0:
                        rem0 = 0
                        rem1 = r1 + 1 if r1 >= 0 else 0
                    else:
                        rem0 = r0 + 1
                        rem1 = 0  # (r1 < 0)
                    best = 1 if rem1 <= rem0 else 0
                    left = ends[best] - now
                    if left < 1:
                        left = 1
                    block = (self.names_rejected, self.rejected_templates[best] % (
                        rem0, rem1, rem1 if best else rem0, left, left))
                    rejected = True
                # req.set_response_headers([HeaderBlock(...)]) as a plain-tuple block,
                # without a call (base.Block)
                extra = req.resp_extra
                if extra is None:
                    req.resp_extra = [block]
                else:
                    extra.append(block)
                if rejected:
                    req.ctx["rate_limit_exceeded"] = True
                    req.error(self.error_code, self.error_message)
                return rejected
            elif n == 1:
                r0 = self.limits_less_one[0] - usages[0]
                if r0 >= 0:
                    left = ends[0] - now
                    req.set_response_headers([HeaderBlock(self.names, templates[0] % (
                        r0, r0, left if left > 0 else 1))])
                    return False
            rems = list(map(sub, self.limits_less_one, usages))  # this request counted
            least = min(rems)
            if least >= 0:  # admitted (every window under its limit): the usual case
                # the smallest remaining; ties go to the longer window (later in PERIODS)
                best = len(rems) - 1 - rems[::-1].index(least)
                req.set_response_headers([HeaderBlock(self.names, templates[best] % (
                    *rems, least, max(1, ends[best] - now)))])
                return False
        stop = -1
        for i, usage in enumerate(usages):
            if limits[i] - usage <= 0:
                stop = i
                break
        if self.hide:
            if stop >= 0:
                req.ctx["rate_limit_exceeded"] = True
                req.error(self.error_code, self.error_message)
                return True
            return False
        # The headers as one serialised block (names and line starts built per config).
        parts: list[bytes] = []
        limit_lines, remaining_starts = self.limit_lines, self.remaining_starts
        best = -1
        best_rem: float = 0
        best_bytes = b""
        for i, usage in enumerate(usages):
            rem = limits[i] - usage
            if stop < 0 or stop == i:
                rem -= 1
            if rem < 0:
                rem = 0
            rem_bytes = b"%d" % rem if rem.__class__ is int else num(rem)
            parts += (limit_lines[i], remaining_starts[i], rem_bytes, CRLF)
            # the smallest remaining; ties go to the longer window (later in PERIODS)
            if best < 0 or rem <= best_rem:
                best, best_rem, best_bytes = i, rem, rem_bytes
        reset = b"%d" % max(1, ends[best] - now)
        parts += (self.rl_limit_lines[best], RL_REMAINING_START, best_bytes, CRLF,
                  RL_RESET_START, reset, CRLF)
        if stop >= 0:
            parts += (RETRY_AFTER_START, reset, CRLF)
            req.ctx["rate_limit_exceeded"] = True
            req.set_response_headers([HeaderBlock(self.names_rejected, b"".join(parts))])
            req.error(self.error_code, self.error_message)
            return True
        req.set_response_headers([HeaderBlock(self.names, b"".join(parts))])
        return False


def _hosts(settings: Any) -> dict[str, str]:
    if settings is None or not getattr(settings, "dns_hostsfile", ""):
        return {}
    from tollway.dataplane.resolver import read_hostsfile

    return read_hostsfile(settings.dns_hostsfile)
