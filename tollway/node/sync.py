"""Keeping a node on the cluster's config: several nodes share one database; a change made
through any of them reaches every node.

    other node ── Store.append ── NOTIFY tollway_config ──► Listener thread ─┐
                                                                             ▼ wake
    ClusterSync.run: every POLL_SECONDS, or at once when woken:
        head row (revision, hash) ── differs from what runs? ── latest revision
        ── Supervisor.prepare (vault references, compile) ── Supervisor.deliver
        heartbeat row (node id, hostname, last seen, revision, hash), every HEARTBEAT_SECONDS

Polling alone covers SQLite (no NOTIFY) and notifications lost while the listener was
disconnected. Any database error marks the node's database unreachable (`/status`,
`gateway_datastore_reachable`); the node keeps serving what it has, and the next successful
poll catches up by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from tollway.controlplane.store import StoreError, migrate
from tollway.controlplane.store import cluster as cluster_store
from tollway.node.supervisor import ApplyError

if TYPE_CHECKING:
    from tollway.node.supervisor import Supervisor

log = logging.getLogger("tollway.node")

POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 1.0
FORGET_AFTER_SECONDS = 24 * 3600  # heartbeat rows of nodes gone this long are deleted
FORGET_EVERY = 600  # heartbeats


class ClusterSync:
    def __init__(self, node: Supervisor, schema_checked: bool = True) -> None:
        assert node.store is not None
        self.node = node
        self.store = node.store
        self.wake = asyncio.Event()
        self.schema_checked = schema_checked
        self.listener: cluster_store.Listener | None = None
        self.beats = 0
        self.failed_revision: int | None = None  # a revision that would not compile here
        self.synced = 0  # configs taken from the database (changes made on other nodes)

    def start(self) -> asyncio.Task[None]:
        loop = asyncio.get_running_loop()
        if self.store.dialect == "postgresql":
            def heard(payload: str | None) -> None:
                loop.call_soon_threadsafe(self.wake.set)

            self.listener = cluster_store.Listener(self.store.engine, heard).start()
        return loop.create_task(self.run())

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.stop()

    async def run(self) -> None:
        next_beat = 0.0
        while not self.node.stopping:
            try:
                await asyncio.wait_for(self.wake.wait(), POLL_SECONDS)
            except TimeoutError:
                pass
            self.wake.clear()
            if self.node.stopping:
                break
            try:
                await self.catch_up()
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + HEARTBEAT_SECONDS
                    await self.heartbeat()
            except StoreError as exc:
                self.node.database_down(exc)
            except Exception:  # never let the loop die: the node would silently drift
                log.exception("cluster sync failed")

    async def catch_up(self) -> bool:
        """Serve the database's latest revision if it is not what runs; True when a new
        config was delivered. Raises StoreError when the database cannot be read."""
        node = self.node
        if not self.schema_checked:
            # the node started on its cached config while the database was down
            await asyncio.to_thread(migrate.check, self.store.engine)
            self.schema_checked = True
        number, head_hash = await asyncio.to_thread(self.store.head)
        node.database_up()
        if number is None or (number == node.revision and head_hash == node.config.hash):
            return False
        if number == self.failed_revision:
            return False
        async with node.lock:
            # another write on this node may have moved on while we waited for the lock
            rev = await asyncio.to_thread(self.store.latest)
            if rev is None or (rev.number == node.revision and rev.hash == node.config.hash):
                return False
            config = rev.config
            try:
                served = node.prepare(config)
            except ApplyError as exc:
                self.failed_revision = rev.number
                log.error("revision %d cannot be served on this node; keeping revision %s: "
                          "%s", rev.number, node.revision, exc)
                return False
            await node.deliver(config, served, rev.number, rev.times)
            self.synced += 1
        log.info("serving revision %d (hash %s) from the database", rev.number, rev.hash)
        return True

    async def heartbeat(self) -> None:
        node = self.node
        await asyncio.to_thread(cluster_store.heartbeat, self.store.engine, node.node_id,
                                node.hostname, node.started_at, node.revision,
                                node.config.hash)
        self.beats += 1
        if self.beats % FORGET_EVERY == 0:
            await asyncio.to_thread(cluster_store.forget_before, self.store.engine,
                                    time.time() - FORGET_AFTER_SECONDS)
