"""The `redis` policy: one EVALSHA for every window (INCR, EXPIRE on the first hit, usage =
result - 1, as Kong's script does per window) — shared by the requests of one event-loop
tick, each still getting its own exact count —, on one pipelined connection per Redis kept
in the worker (`resp.Client`), and DECISIONS #4: while Redis is unreachable a
fault-tolerant plugin keeps counting in the node-local table, logs once per outage and
retries Redis at most once a second. `sync_rate > 0` batches increments (Kong's per-worker
cache plus deltas).

Each backend reports `gateway_rate_limit_store_degraded{host,port}` in the worker's metric
registry: 1 from a failure until the next success, 0 otherwise (merged with `max`, so one
worker in an outage marks the node degraded; the RateLimitStoreDegraded alert reads it)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

import hiredis

from tollway import metrics
from tollway.plugins.rate_limiting.resp import Client, command, frame, settle

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
SCRIPT_SHA = hashlib.sha1(INCR_SCRIPT.encode()).hexdigest().encode()
EVALSHA = frame(b"EVALSHA") + frame(SCRIPT_SHA)
EVAL = frame(b"EVAL") + frame(INCR_SCRIPT.encode())
RETRY_AFTER = 1.0  # seconds between attempts to reach a Redis that failed
BATCH_MAX = 128  # requests per script call (the script runs atomically: keep it short)
DEGRADED = "gateway_rate_limit_store_degraded"
# Called with its context and either the request's usages or the exception that failed
# the call; it must not raise.
Sink = Callable[[Any, Any], None]


def degraded_gauge(registry: metrics.Registry) -> metrics.Gauge:
    return registry.gauge(DEGRADED, "1 while rate limiting cannot reach this Redis and counts "
                          "on node-local counters, else 0", ("host", "port"), aggregate="max")


def keys_frame(keys: list[str]) -> bytes:
    """A request's counter keys framed for the script call (once per identifier and
    second: the policy's memo keeps it)."""
    return b"".join(frame(k.encode("utf-8", "surrogatepass")) for k in keys)


def args_frame(ttls: list[int]) -> bytes:
    return b"".join(frame(str(t).encode()) for t in ttls)


def client_for(conf: dict[str, Any], host: str) -> Client:
    """Kong's connection fields: timeout for each of connect / send / read unless given
    apart (milliseconds), database, username + password (ACL AUTH), ssl, ssl_verify,
    server_name (SNI and, when verifying, the name checked)."""
    ms = conf["timeout"] if conf["timeout"] is not None else 2000
    connect = (conf.get("connect_timeout") or ms) / 1000
    io = max(conf.get("send_timeout") or ms, conf.get("read_timeout") or ms) / 1000
    ctx: ssl.SSLContext | None = None
    if conf.get("ssl"):
        ctx = ssl.create_default_context()
        if not conf.get("ssl_verify"):
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif not conf.get("server_name"):
            ctx.check_hostname = False  # verified chain, no name to check it against
    return Client(host, conf["port"], db=conf["database"] or 0,
                  username=conf.get("username"), password=conf.get("password"),
                  ssl_context=ctx, server_hostname=conf.get("server_name") or host,
                  connect_timeout=connect or None, io_timeout=io or None)


class Backend:
    """One Redis server (host, port, database, credentials, TLS): its connection, the
    requests of this tick waiting for the script call, and the outage state. Lives in
    `ctx.worker`, created lazily by the first request."""

    def __init__(self, conf: dict[str, Any], host: str,
                 registry: metrics.Registry | None = None) -> None:
        self.conf = conf
        self.host = host
        # Set to 0 at once: the series exists (and the alert can be evaluated) before any
        # failure, not only after the first outage.
        self.degraded = degraded_gauge(registry or metrics.Registry())
        self.labels = (host, str(conf["port"]))
        self.degraded.set(self.labels, 0)
        self._client: Client | None = None
        self.down_until = 0.0
        self.outage = False
        self.syncs: dict[str, SyncCache] = {}
        # This tick's requests: their framed keys, framed TTLs and (key count, sink,
        # context), sent as one script call when the tick ends.
        self.keys: list[bytes] = []
        self.args: list[bytes] = []
        self.sinks: list[tuple[int, Sink, Any]] = []

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = client_for(self.conf, self.host)
        return self._client

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

    def add(self, keys: bytes, n: int, args: bytes, sink: Sink, ctx: Any) -> None:
        """Count one request: `keys` its `n` framed counter keys, `args` their framed TTLs.
        `sink(ctx, usages)` gets the usages before this request (or the exception) once
        this tick's script call is answered: the script increments every key of every
        request in order, so each request gets its own exact count, as with a call of its
        own."""
        sinks = self.sinks
        if not sinks:
            asyncio.get_running_loop().call_soon(self._flush)
        sinks.append((n, sink, ctx))
        self.keys.append(keys)
        self.args.append(args)

    def incr(self, keys: list[str], ttls: list[int]) -> asyncio.Future[list[int]]:
        """`add` for one request as a future of its usages."""
        fut: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self.add(keys_frame(keys), len(keys), args_frame(ttls), settle, fut)
        return fut

    def _flush(self) -> None:
        keys, args, sinks = self.keys, self.args, self.sinks
        self.keys, self.args, self.sinks = [], [], []
        if len(sinks) <= BATCH_MAX:
            self._send(keys, args, sinks, EVALSHA)
            return
        for i in range(0, len(sinks), BATCH_MAX):
            j = i + BATCH_MAX
            self._send(keys[i:j], args[i:j], sinks[i:j], EVALSHA)

    def _send(self, keys: list[bytes], args: list[bytes], sinks: list[tuple[int, Sink, Any]],
              verb: bytes) -> None:
        total = 0
        for n, _, _ in sinks:
            total += n
        cmd = b"".join((b"*%d\r\n" % (3 + 2 * total), verb, frame(b"%d" % total),
                        *keys, *args))

        def answered(reply: Any) -> None:
            if reply.__class__ is list:
                self.succeeded()
                pos = 0
                for n, sink, ctx in sinks:
                    try:
                        sink(ctx, reply[pos:pos + n])
                    except Exception:  # one request's bug must not strand the others
                        log.exception("rate-limiting: a request's count was not applied")
                    pos += n
                return
            if (verb is EVALSHA and isinstance(reply, hiredis.ReplyError)
                    and str(reply).startswith("NOSCRIPT")):
                # the server does not know the script yet (first call, a restart, SCRIPT
                # FLUSH): nothing was counted, send the same batch with the script's text
                self._send(keys, args, sinks, EVAL)
                return
            if not isinstance(reply, Exception):
                reply = hiredis.ReplyError(f"unexpected reply to the script: {reply!r}")
            for _, sink, ctx in sinks:
                try:
                    sink(ctx, reply)
                except Exception:
                    log.exception("rate-limiting: a request's failure was not applied")

        self.client.send(cmd, answered)

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
        cache = self.cache
        missing = [k for k in keys if k not in cache or cache[k][1] <= now]
        if missing:
            values = await b.client.call(b"MGET", *(k.encode("utf-8", "surrogatepass")
                                                   for k in missing))
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
            cmds: list[bytes] = []
            for k, (n, end) in delta.items():
                kb = k.encode("utf-8", "surrogatepass")
                cmds += (command(b"INCRBY", kb, b"%d" % n), command(b"EXPIREAT", kb, b"%d" % end))
            results = await b.client.call_many(cmds)
            for r in results:
                if isinstance(r, Exception):
                    raise r
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
