"""Rate-limiting `cluster` policy counters, in the config database (SQLite or PostgreSQL):
Kong's `ratelimiting_metrics` table (identifier, period, period_date, service_id, route_id,
value, ttl), created by the store's migrations.

`check_and_incr` admits a request only if every period is under its limit, and counts it in
the same transaction: each row is upserted `value + 1 ... RETURNING value` (which locks it),
and the transaction is rolled back when any period was already at its limit — so rejected
requests are not counted (Kong's cluster policy) and two nodes cannot both take the last
slot. Rows carry their expiry (`ttl`, epoch seconds); `purge_expired` deletes dead ones and
`check_and_incr` calls it every PURGE_EVERY operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from tollway.controlplane.store import engine as engine_mod
from tollway.settings import Settings

PURGE_EVERY = 1000
KEY = ("identifier", "period", "period_date", "service_id", "route_id")

metadata = sa.MetaData()
ratelimiting_metrics = sa.Table(
    "ratelimiting_metrics", metadata,
    sa.Column("identifier", sa.Text, primary_key=True),
    sa.Column("period", sa.Text, primary_key=True),
    sa.Column("period_date", sa.BigInteger, primary_key=True),
    sa.Column("service_id", sa.Text, primary_key=True),
    sa.Column("route_id", sa.Text, primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.Column("ttl", sa.BigInteger),
)

# identifier, period, period start (epoch s), service id, route id, expiry (epoch s)
Row = tuple[str, str, int, str, str, int]


class Counters:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._insert = dialect.insert
        self.ops = 0

    @classmethod
    def open(cls, settings: Settings) -> Counters:
        """Counters on the node's database (the schema must be migrated: `tollway start`
        does it for SQLite, `tollway migrations bootstrap` for PostgreSQL)."""
        engine = engine_mod.make_engine(settings)
        if engine.dialect.name == "sqlite":
            @sa.event.listens_for(engine, "connect")
            def _relaxed(dbapi_conn: Any, _record: Any) -> None:
                # counters are per-window and short-lived: under WAL, NORMAL cannot corrupt
                # the file and only a power loss can drop the last commits; it saves the
                # fsync on every request
                dbapi_conn.execute("PRAGMA synchronous=NORMAL")
        return cls(engine)

    def check_and_incr(self, rows: Sequence[Row], limits: Sequence[float],
                       now: int) -> list[int]:
        """The usage of each row before this request; the request is counted only when
        every usage is under its limit."""
        t = ratelimiting_metrics
        usages: list[int] = []
        with self.engine.connect() as conn:
            trans = conn.begin()
            try:
                for r in rows:
                    stmt: Any = self._insert(t).values(
                        identifier=r[0], period=r[1], period_date=r[2], service_id=r[3],
                        route_id=r[4], value=1, ttl=r[5])
                    stmt = stmt.on_conflict_do_update(
                        index_elements=list(KEY), set_={"value": t.c.value + 1}
                    ).returning(t.c.value)
                    usages.append(int(conn.execute(stmt).scalar_one()) - 1)
                if all(u < lim for u, lim in zip(usages, limits, strict=True)):
                    trans.commit()
                else:
                    trans.rollback()
            except BaseException:
                trans.rollback()
                raise
        self.ops += 1
        if self.ops % PURGE_EVERY == 0:
            self.purge_expired(now)
        return usages

    def usage(self, rows: Sequence[Row]) -> list[int]:
        """Current values, without counting anything (0 for a missing row)."""
        t = ratelimiting_metrics
        out = []
        with self.engine.connect() as conn:
            for r in rows:
                value = conn.execute(sa.select(t.c.value).where(
                    *(t.c[k] == v for k, v in zip(KEY, r[:5], strict=True)))).scalar()
                out.append(int(value or 0))
            conn.rollback()
        return out

    def purge_expired(self, now: int) -> int:
        """Delete the rows whose window ended before `now`; returns how many."""
        t = ratelimiting_metrics
        with self.engine.begin() as conn:
            return int(conn.execute(t.delete().where(t.c.ttl < now)).rowcount or 0)

    def close(self) -> None:
        self.engine.dispose()
