"""The node: one supervisor process that owns the config and the admin listener, and N
worker processes that serve the proxy.

    tollway start
        │  settings, initial config (file, or the store's latest revision)
        ▼
    Supervisor ── admin listener (Starlette on uvicorn) ── store (SQLite / PostgreSQL)
        │ socketpair per worker (tollway.node.channel)
        ├── worker 1 ── proxy listener (SO_REUSEPORT)
        └── worker N ── proxy listener (SO_REUSEPORT)

A config change is validated and compiled here first, stored, then sent to every worker;
`apply` returns once every worker has acknowledged, so the next request on any worker sees
it (DECISIONS.md #5). A worker that dies is restarted with the current config.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tollway import metrics
from tollway.config.model import Config
from tollway.controlplane.store import PreconditionFailed, Store, StoreError, if_match_ok
from tollway.controlplane.store.times import Times, carry, stored
from tollway.dataplane.resolver import Resolver
from tollway.dataplane.snapshot import Snapshot
from tollway.node import cache, channel
from tollway.reconcile.vault import VaultError, resolve_references
from tollway.settings import Settings

if TYPE_CHECKING:
    from tollway.node.sync import ClusterSync

log = logging.getLogger("tollway.node")

READY_TIMEOUT = 30.0
ACK_TIMEOUT = 30.0
METRICS_TIMEOUT = 5.0


class ApplyError(Exception):
    """A config passed validation but could not be compiled or delivered."""


@dataclass
class WorkerHandle:
    slot: int
    process: subprocess.Popen[bytes]
    writer: asyncio.StreamWriter
    reader: asyncio.StreamReader
    ready: asyncio.Future[None]
    stats: dict[str, Any] = field(default_factory=dict)
    listener: asyncio.Task[None] | None = None
    pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    scrapes: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)


class Supervisor:
    def __init__(self, settings: Settings, config: Config, store: Store | None,
                 revision: int | None = None, db_reachable: bool = True,
                 times: Times | None = None) -> None:
        self.settings = settings
        self.config = config  # as stored: vault references unresolved
        # what the workers get: vault references resolved (`prepare` sets it; start-up
        # calls it before any worker is spawned)
        self.served = config
        self.revision = revision
        self.store = store
        self.db_reachable = store is not None and db_reachable
        self.db_error: str | None = None
        self.workers: dict[int, WorkerHandle] = {}
        self.lock = asyncio.Lock()
        self.next_id = 0
        self.stopping = False
        self.started_at = time.time()
        # created_at / updated_at of the running config's entities (store/times.py): the
        # stored revision's, so every node and every restart reports the same; without one
        # (DB-less, an old cache) the entities count as created when the node started
        self.times: Times = (times if times is not None
                             else stored(config.entities, None, self.started_at))
        self.restarts = 0
        self.resolver = Resolver.from_settings(settings)
        self.next_scrape = 0
        self.hostname = socket.gethostname()
        self.node_id = os.environ.get("TOLLWAY_NODE_ID") or str(
            uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.hostname}:{settings.prefix}"))
        # how often a delivered config was the one already served (no rebuild) or new
        self.rebuilds = {"applied": 0, "unchanged": 0}
        self.last_build_seconds = 0.0
        self.sync: ClusterSync | None = None  # set by `tollway start` when there is a store

    def database_up(self) -> None:
        if not self.db_reachable and self.store is not None:
            log.warning("the database is reachable again (%s)", self.store.description)
        self.db_reachable = self.store is not None
        self.db_error = None

    def database_down(self, exc: BaseException) -> None:
        if self.db_reachable:
            log.error("the database is unreachable; serving revision %s (hash %s) until it "
                      "is back: %s", self.revision, self.config.hash, exc)
        self.db_reachable = False
        self.db_error = str(exc)

    # -- workers ----------------------------------------------------------------------------
    async def spawn(self, slot: int) -> WorkerHandle:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env.update(self.settings.to_env())
        proc = subprocess.Popen(
            [sys.executable, "-m", "tollway.node.worker", str(child.fileno())],
            pass_fds=(child.fileno(),), env=env,
            # Own process group: a terminal's Ctrl-C (or `timeout`) signals the supervisor
            # only, which then drains the workers in order; the workers never race it.
            process_group=0)
        child.close()
        reader, writer = await channel.open_channel(parent)
        loop = asyncio.get_running_loop()
        handle = WorkerHandle(slot, proc, writer, reader, loop.create_future())
        self.workers[slot] = handle
        channel.send(writer, {"op": "config", "id": 0, "entities": self.served.entities,
                              "hash": self.served.hash})
        handle.listener = loop.create_task(self._listen(handle))
        return handle

    async def _listen(self, handle: WorkerHandle) -> None:
        while True:
            try:
                msg = await channel.receive(handle.reader)
            except (ConnectionError, ValueError):
                msg = None
            if msg is None:
                break
            op = msg.get("op")
            if op == "ready":
                if not handle.ready.done():
                    handle.ready.set_result(None)
            elif op == "stats":
                handle.stats = msg
            elif op == "ack":
                fut = handle.pending.pop(msg.get("id", -1), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
            elif op == "metrics":
                fut = handle.scrapes.pop(msg.get("id", -1), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        for fut in [*handle.pending.values(), *handle.scrapes.values()]:
            if not fut.done():
                fut.set_exception(ApplyError(f"worker {handle.process.pid} exited"))
        if not handle.ready.done():
            handle.ready.set_exception(ApplyError(f"worker {handle.process.pid} exited"))

    async def start_workers(self) -> None:
        for slot in range(self.settings.workers):
            await self.spawn(slot)
        await asyncio.wait_for(asyncio.gather(*(w.ready for w in self.workers.values())),
                               READY_TIMEOUT)

    async def watch(self) -> None:
        """Restart crashed workers (not while stopping)."""
        while not self.stopping:
            await asyncio.sleep(0.2)
            for slot, handle in list(self.workers.items()):
                code = handle.process.poll()
                if code is not None and not self.stopping:
                    self.restarts += 1
                    log.error("worker %d (slot %d) exited with %s; restarting",
                              handle.process.pid, slot, code)
                    handle.writer.close()
                    new = await self.spawn(slot)
                    try:
                        await asyncio.wait_for(asyncio.shield(new.ready), READY_TIMEOUT)
                    except (TimeoutError, ApplyError):
                        log.error("restarted worker in slot %d did not become ready", slot)

    async def stop(self) -> None:
        """SIGTERM every worker (they drain), wait for them, kill stragglers."""
        self.stopping = True
        for handle in self.workers.values():
            if handle.process.poll() is None:
                handle.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.graceful_timeout + 5
        for handle in self.workers.values():
            while handle.process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if handle.process.poll() is None:
                handle.process.kill()
            handle.writer.close()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)

    # -- config -----------------------------------------------------------------------------
    def prepare(self, config: Config) -> Config:
        """`config` with its vault references resolved, compiled as a worker would compile
        it; raises ApplyError on anything that cannot be served."""
        try:
            served = resolve_references(config)
        except VaultError as exc:
            raise ApplyError(str(exc)) from exc
        try:
            Snapshot(served, self.resolver, self.settings, offline=True)
        except Exception as exc:
            raise ApplyError(f"config does not compile: {exc}") from exc
        return served

    def check(self, config: Config) -> None:
        """Compile `config` as a worker would; raises on anything that cannot be served."""
        self.prepare(config)

    async def apply(self, config: Config, *, author: str | None = None,
                    message: str | None = None, if_match: str | None = None,
                    touched: Collection[str] = ()) -> int | None:
        """Make `config` the running config of every worker, or change nothing.

        With a store, `config` becomes a new revision first (one transaction; an identical
        config is not stored again). `if_match` is an If-Match header value: unless it
        matches the current config hash, PreconditionFailed is raised and nothing changes.
        The database unreachable: StoreError, nothing changes. `touched`: entity ids the
        caller wrote (their updated_at moves even when no value changed). Returns the
        revision now served (None when DB-less)."""
        async with self.lock:
            served = self.prepare(config)
            revision = self.revision
            if self.store is not None:
                # the store checks If-Match against the database, which other nodes write too
                try:
                    rev, _ = await asyncio.to_thread(self.store.append, config, author,
                                                     message, if_match, touched)
                except PreconditionFailed:
                    self.database_up()
                    raise
                except StoreError as exc:
                    self.database_down(exc)
                    raise
                self.database_up()
                revision = rev.number
                times = rev.times
            elif if_match is not None and not if_match_ok(if_match, self.config.hash):
                raise PreconditionFailed(if_match, self.config.hash, None)
            else:
                times = carry(self.config.entities, self.times, config.entities,
                              int(time.time()), touched)
            await self.deliver(config, served, revision, times)
            return self.revision

    async def deliver(self, config: Config, served: Config, revision: int | None,
                      times: Times | None) -> None:
        """Send `served` (resolved `config`) to every worker and wait for their acks; the
        caller holds `self.lock`. A config with the hash already served is not rebuilt.
        `times`: the entity timestamps of `config`."""
        unchanged = config.hash == self.config.hash
        self.config, self.served, self.revision = config, served, revision
        self.times = times or {}
        if self.store is not None:
            await asyncio.to_thread(self._save_cache)
        if unchanged:
            self.rebuilds["unchanged"] += 1
            return
        self.rebuilds["applied"] += 1
        started = time.monotonic()
        self.next_id += 1
        msg_id = self.next_id
        loop = asyncio.get_running_loop()
        waits = []
        for handle in self.workers.values():
            if handle.process.poll() is not None:
                continue  # the watcher restarts it with self.served
            fut: asyncio.Future[dict[str, Any]] = loop.create_future()
            handle.pending[msg_id] = fut
            channel.send(handle.writer, {"op": "config", "id": msg_id,
                                         "entities": served.entities, "hash": served.hash})
            waits.append(fut)
        done, _ = await asyncio.wait(waits, timeout=ACK_TIMEOUT) if waits else (set(), set())
        for handle in list(self.workers.values()):
            sent = handle.pending.pop(msg_id, None)
            ok = (sent is not None and sent in done and sent.exception() is None
                  and sent.result().get("ok"))
            if sent is not None and not ok:
                # A worker that cannot take the config it was sent must not go on serving
                # the old one: kill it; the watcher restarts it with self.served.
                log.error("worker %d did not apply config %s; restarting it",
                          handle.process.pid, config.hash)
                handle.process.kill()
        self.last_build_seconds = time.monotonic() - started

    async def set_target_health(self, upstream: str, target: str, healthy: bool) -> None:
        """Mark a target (un)healthy in every live worker's balancer and wait for the acks,
        so that the Admin API's 204 means every worker has taken it."""
        self.next_id += 1
        msg_id = self.next_id
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[dict[str, Any]]] = []
        for handle in self.workers.values():
            if handle.process.poll() is not None:
                continue
            fut: asyncio.Future[dict[str, Any]] = loop.create_future()
            handle.pending[msg_id] = fut
            channel.send(handle.writer, {"op": "target_health", "id": msg_id,
                                         "upstream": upstream, "target": target,
                                         "healthy": healthy})
            waits.append(fut)
        if waits:
            await asyncio.wait(waits, timeout=ACK_TIMEOUT)
        for handle in self.workers.values():
            handle.pending.pop(msg_id, None)

    def _save_cache(self) -> None:
        try:
            cache.save(self.settings.prefix, self.config, self.revision, self.times)
        except OSError as exc:
            log.error("cannot write the config cache in %s: %s", self.settings.prefix, exc)

    # -- metrics ----------------------------------------------------------------------------
    async def collect_metrics(self, timeout: float = METRICS_TIMEOUT) -> dict[str, Any]:
        """Ask every live worker for its metric samples and merge them (`tollway.metrics`:
        counters and histogram buckets summed; gauges summed or maxed as each declares).
        A worker that does not answer within `timeout` (dying, or busy compiling a config)
        is left out of this scrape."""
        self.next_scrape += 1
        scrape_id = self.next_scrape
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[dict[str, Any]]] = []
        asked: list[WorkerHandle] = []
        for handle in self.workers.values():
            if handle.process.poll() is not None or not handle.ready.done():
                continue
            fut: asyncio.Future[dict[str, Any]] = loop.create_future()
            handle.scrapes[scrape_id] = fut
            try:
                channel.send(handle.writer, {"op": "metrics", "id": scrape_id})
            except (ConnectionError, RuntimeError):
                handle.scrapes.pop(scrape_id, None)
                continue
            waits.append(fut)
            asked.append(handle)
        if waits:
            await asyncio.wait(waits, timeout=timeout)
        own = metrics.Registry()
        if self.store is not None:
            metrics.set_datastore_reachable(own, self.db_reachable)
        exports = []
        for handle, fut in zip(asked, waits, strict=True):
            handle.scrapes.pop(scrape_id, None)
            if fut.done() and fut.exception() is None:
                exports.append(fut.result().get("metrics") or {})
            else:
                if not fut.done():
                    fut.cancel()
                log.warning("worker %d did not answer a metrics scrape", handle.process.pid)
        return metrics.merge([own.export(), *exports])

    # -- status -----------------------------------------------------------------------------
    def server_stats(self) -> dict[str, int]:
        keys = ("connections_active", "connections_accepted", "connections_handled",
                "total_requests", "connections_reading", "connections_writing",
                "connections_waiting")
        return {k: sum(int(w.stats.get(k, 0)) for w in self.workers.values()) for k in keys}

    def worker_info(self) -> list[dict[str, Any]]:
        return [{"pid": w.process.pid, "slot": w.slot, "alive": w.process.poll() is None,
                 "configuration_hash": w.stats.get("hash"), "started_at": int(w.started_at)}
                for w in self.workers.values()]
