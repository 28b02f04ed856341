"""The `cluster` policy: counters in the config database, Kong's `ratelimiting_metrics` table
(identifier, period, period_date, service_id, route_id, value, ttl; primary key on the first
five). Tollway's config database is the node's SQLite file `<prefix>/tollway.db`. Unlike
Kong (a SELECT, then an asynchronous upsert), the check and the increment are one
transaction, so concurrent workers cannot over-admit."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS ratelimiting_metrics (
  identifier  TEXT NOT NULL,
  period      TEXT NOT NULL,
  period_date INTEGER NOT NULL,
  service_id  TEXT NOT NULL,
  route_id    TEXT NOT NULL,
  value       INTEGER NOT NULL DEFAULT 0,
  ttl         INTEGER,
  PRIMARY KEY (identifier, period, period_date, service_id, route_id)
)"""
SELECT = ("SELECT value FROM ratelimiting_metrics WHERE identifier=? AND period=? AND "
          "period_date=? AND service_id=? AND route_id=?")
UPSERT = ("INSERT INTO ratelimiting_metrics VALUES (?,?,?,?,?,1,?) ON CONFLICT "
          "(identifier, period, period_date, service_id, route_id) DO UPDATE SET "
          "value = value + 1")

Row = tuple[str, str, int, str, str, int]  # identifier, period, start, service, route, ttl


class ClusterStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=5.0, isolation_level=None,
                                  check_same_thread=False)
        self.db.execute("PRAGMA busy_timeout = 5000")
        self.db.execute(SCHEMA)
        self.ops = 0

    def check_and_incr(self, rows: list[Row], limits: list[float], now: int) -> list[int]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            usages = []
            for r in rows:
                found = db.execute(SELECT, r[:5]).fetchone()
                usages.append(int(found[0]) if found else 0)
            if all(u < lim for u, lim in zip(usages, limits, strict=True)):
                db.executemany(UPSERT, rows)
            self.ops += 1
            if self.ops % 1000 == 0:
                db.execute("DELETE FROM ratelimiting_metrics WHERE ttl < ?", (now,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return usages


def cluster_store(worker: dict[str, Any], path: Path) -> ClusterStore:
    key = f"rate-limiting:cluster:{path}"
    store = worker.get(key)
    if store is None:
        store = worker[key] = ClusterStore(path)
    assert isinstance(store, ClusterStore)
    return store
