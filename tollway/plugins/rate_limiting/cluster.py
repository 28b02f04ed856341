"""The `cluster` policy: counters in the node's config database (SQLite or PostgreSQL),
Kong's `ratelimiting_metrics` table, through the store's `Counters`
(`tollway.controlplane.store.counters`: the check and the increment are one transaction,
so workers and nodes sharing the database cannot over-admit).

Each worker opens one `Counters` (its own connection pool) and a small thread pool, both
kept in the worker-lived state: a database round trip runs in a thread, so a slow or
remote PostgreSQL never blocks the worker's event loop and the other requests on it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tollway.controlplane.store import Counters, open_store
from tollway.controlplane.store.counters import Row
from tollway.settings import Settings

THREADS = 4  # concurrent round trips per worker (the engine's pool allows 2 + 4 overflow)
KEY = "rate-limiting:cluster"


class ClusterCounters:
    def __init__(self, settings: Settings) -> None:
        if settings.database == "sqlite":
            # the embedded database migrates itself (as `tollway start` does); a gateway
            # built in-process may be the first to open it
            open_store(settings).close()
        self.counters = Counters.open(settings)
        self.pool = ThreadPoolExecutor(THREADS, thread_name_prefix="rate-limiting-cluster")

    async def check_and_incr(self, rows: Sequence[Row], limits: Sequence[float],
                             now: int) -> list[int]:
        loop = asyncio.get_running_loop()
        usages: list[int] = await loop.run_in_executor(
            self.pool, self.counters.check_and_incr, rows, limits, now)
        return usages


def cluster_counters(worker: dict[str, Any], settings: Settings) -> ClusterCounters:
    found = worker.get(KEY)
    if found is None:
        found = worker[KEY] = ClusterCounters(settings)
    assert isinstance(found, ClusterCounters)
    return found
