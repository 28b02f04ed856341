"""The `redis` policy: one EVALSHA for every window (INCR, EXPIRE on the first hit, usage =
result - 1, as Kong's script does per window) — shared by the requests of one event-loop
tick, each still getting its own exact count —, a pool per connection settings
kept in the worker, and DECISIONS #4: while Redis is unreachable a fault-tolerant plugin
keeps counting in the node-local table, logs once per outage and retries Redis at most once
a second. `sync_rate > 0` batches increments (Kong's per-worker cache plus deltas).

Each backend reports `gateway_rate_limit_store_degraded{host,port}` in the worker's metric
registry: 1 from a failure until the next success, 0 otherwise (merged with `max`, so one
worker in an outage marks the node degraded; the RateLimitStoreDegraded alert reads it)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from tollway import metrics

log = logging.getLogger("tollway.plugins.rate-limiting")

# KEYS: one counter key per window; ARGV: the window lengths. Returns the usages before
# this request (the request itself is counted, rejected or not, as Kong does).
INCR_SCRIPT = """
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('INCR', key)
  if v == 1 then redis.call('EXPIRE', key, ARGV[i]) end
  out[i] = v - 1
end
return out
"""
RETRY_AFTER = 1.0  # seconds between attempts to reach a Redis that failed
BATCH_MAX = 128  # requests per script call
POOL_SIZE = 100
DEGRADED = "gateway_rate_limit_store_degraded"


def degraded_gauge(registry: metrics.Registry) -> metrics.Gauge:
    return registry.gauge(DEGRADED, "1 while rate limiting cannot reach this Redis and counts "
                          "on node-local counters, else 0", ("host", "port"), aggregate="max")


class Backend:
    """One Redis server (host, port, database, credentials, TLS): its client, the script,
    and its outage state. Lives in `ctx.worker`, created lazily by the first request."""

    def __init__(self, conf: dict[str, Any], host: str,
                 registry: metrics.Registry | None = None) -> None:
        self.conf = conf
        self.host = host
        # Set to 0 at once: the series exists (and the alert can be evaluated) before any
        # failure, not only after the first outage.
        self.degraded = degraded_gauge(registry or metrics.Registry())
        self.labels = (host, str(conf["port"]))
        self.degraded.set(self.labels, 0)
        self.client: Any = None
        self.script: Any = None
        self.down_until = 0.0
        self.outage = False
        self.syncs: dict[str, SyncCache] = {}
        # Increments asked for during one event-loop tick, sent as one script call.
        self.pending: list[tuple[list[str], list[int], asyncio.Future[list[int]]]] = []
        self.calls: set[asyncio.Task[None]] = set()

    def _connect(self) -> None:
        import redis.asyncio as aioredis

        c = self.conf
        ms = c["timeout"] if c["timeout"] is not None else 2000
        connect = (c.get("connect_timeout") or ms) / 1000
        io = max(c.get("send_timeout") or ms, c.get("read_timeout") or ms) / 1000
        kw: dict[str, Any] = {
            "host": self.host, "port": c["port"], "db": c["database"] or 0,
            "username": c.get("username"), "password": c.get("password"),
            "socket_connect_timeout": connect or None, "socket_timeout": io or None,
            "max_connections": POOL_SIZE, "timeout": connect or None,
        }
        if c.get("ssl"):
            import ssl as ssl_mod

            from redis.asyncio.connection import SSLConnection
            kw["connection_class"] = SSLConnection
            verify = bool(c.get("ssl_verify"))
            kw["ssl_cert_reqs"] = ssl_mod.CERT_REQUIRED if verify else ssl_mod.CERT_NONE
            kw["ssl_check_hostname"] = bool(c.get("ssl_verify") and c.get("server_name"))
        pool = aioredis.BlockingConnectionPool(**kw)
        self.client = aioredis.Redis(connection_pool=pool)
        self.script = self.client.register_script(INCR_SCRIPT)

    def available(self) -> bool:
        """False while in an outage and not yet time to retry; the caller that gets True
        after an outage is the one probe for the next second."""
        if not self.outage:
            return True
        now = time.monotonic()
        if now < self.down_until:
            return False
        self.down_until = now + RETRY_AFTER
        return True

    def failed(self, exc: BaseException) -> None:
        self.down_until = time.monotonic() + RETRY_AFTER
        self.degraded.set(self.labels, 1)
        if not self.outage:
            self.outage = True
            log.error("rate-limiting: failed to get usage: %s (redis %s:%s); limits are "
                      "enforced with node-local counters until it is back", exc or
                      type(exc).__name__, self.host, self.conf["port"])

    def succeeded(self) -> None:
        if self.outage:
            self.outage = False
            self.degraded.set(self.labels, 0)
            log.warning("rate-limiting: redis %s:%s is back; counting there again",
                        self.host, self.conf["port"])

    def incr(self, keys: list[str], ttls: list[int]) -> asyncio.Future[list[int]]:
        """The usages before this request of `keys` (each incremented, with its TTL set on
        the first hit). The requests of one event-loop tick share one script call: the
        script increments every key of every request in order, so each request still gets
        its own exact count, as with a call of its own."""
        if self.client is None:
            self._connect()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[int]] = loop.create_future()
        if not self.pending:
            loop.call_soon(self._flush, loop)
        self.pending.append((keys, ttls, fut))
        return fut

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self.pending = self.pending, []
        for i in range(0, len(batch), BATCH_MAX):
            task = loop.create_task(self._call(batch[i:i + BATCH_MAX]))
            self.calls.add(task)  # the loop keeps only a weak reference
            task.add_done_callback(self.calls.discard)

    async def _call(self, batch: list[tuple[list[str], list[int],
                                            asyncio.Future[list[int]]]]) -> None:
        if len(batch) == 1:
            keys, ttls = batch[0][0], batch[0][1]
        else:
            keys, ttls = [], []
            for k, t, _ in batch:
                keys += k
                ttls += t
        try:
            result = await self.script(keys=keys, args=ttls)
        except BaseException as exc:
            for _, _, fut in batch:
                if not fut.done():
                    if isinstance(exc, asyncio.CancelledError):
                        fut.cancel()
                    else:
                        fut.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        pos = 0
        for k, _, fut in batch:
            n = len(k)
            if not fut.done():
                fut.set_result([int(v) for v in result[pos:pos + n]])
            pos += n

    def sync(self, sync_rate: float) -> SyncCache:
        key = repr(sync_rate)
        s = self.syncs.get(key)
        if s is None:
            s = self.syncs[key] = SyncCache(self, sync_rate)
        return s


class SyncCache:
    """sync_rate > 0: usages read once per key (one MGET for the missing ones) and then served
    from this worker's cache plus its own deltas; deltas flushed every `sync_rate` seconds
    with one pipeline of INCRBY + EXPIREAT <window end>. Approximate, as in Kong."""

    def __init__(self, backend: Backend, rate: float) -> None:
        self.backend = backend
        self.rate = rate
        self.cache: dict[str, tuple[int, int]] = {}  # key -> (redis value, window end)
        self.delta: dict[str, list[int]] = {}        # key -> [count, window end]
        self.task: asyncio.Task[None] | None = None

    async def usages(self, keys: list[str], ends: list[int], now: int) -> list[int]:
        b = self.backend
        if b.client is None:
            b._connect()
        cache = self.cache
        missing = [k for k in keys if k not in cache or cache[k][1] <= now]
        if missing:
            values = await b.client.mget(missing)
            for k, v in zip(missing, values, strict=True):
                cache[k] = (int(v or 0), ends[keys.index(k)])
        out = []
        for k in keys:
            d = self.delta.get(k)
            out.append(cache[k][0] + (d[0] if d is not None else 0))
        return out

    def incr(self, keys: list[str], ends: list[int]) -> None:
        for k, end in zip(keys, ends, strict=True):
            d = self.delta.get(k)
            if d is None:
                self.delta[k] = [1, end]
            else:
                d[0] += 1
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self.delta:
            await asyncio.sleep(self.rate)
            await self.flush()

    async def flush(self) -> None:
        delta, self.delta = self.delta, {}
        if not delta:
            return
        b = self.backend
        try:
            pipe = b.client.pipeline(transaction=False)
            for k, (n, end) in delta.items():
                pipe.incrby(k, n)
                pipe.expireat(k, end)
            results = await pipe.execute()
        except Exception as exc:  # keep the deltas for the next round
            for k, (n, end) in delta.items():
                d = self.delta.setdefault(k, [0, end])
                d[0] += n
            b.failed(exc)
            return
        b.succeeded()
        for (k, (_, end)), value in zip(delta.items(), results[::2], strict=True):
            self.cache[k] = (int(value), end)


def backend_for(worker: dict[str, Any], conf: dict[str, Any], host: str) -> Backend:
    key = ("rate-limiting:redis", host, conf["port"], conf["database"], conf.get("username"),
           conf.get("password"), conf.get("ssl"), conf.get("ssl_verify"),
           conf.get("server_name"), conf["timeout"], conf.get("connect_timeout"),
           conf.get("send_timeout"), conf.get("read_timeout"))
    pools: dict[Any, Backend] = worker.setdefault("rate-limiting:redis", {})
    b = pools.get(key)
    if b is None:
        b = pools[key] = Backend(conf, host, metrics.for_worker(worker))
    return b
