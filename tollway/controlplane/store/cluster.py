"""Several nodes on one database: the heartbeat table and the change notifications.

* `cluster_nodes` (migration 0002): every node upserts its row about once a second —
  node id, hostname, start time, last seen, the revision and hash it serves — so
  `GET /cluster/nodes` shows drift between nodes.
* Change notifications: `Store.append` sends `NOTIFY tollway_config, '<revision>:<hash>'`
  inside the revision's transaction (PostgreSQL delivers it on commit, so nobody hears of a
  revision that was rolled back). `Listener` holds one connection doing `LISTEN` in a
  thread and calls back on every notification; the node also polls the head row every
  second, which covers SQLite (no NOTIFY), a lost listener connection and missed messages.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tollway.controlplane.store.errors import StoreError

log = logging.getLogger("tollway.store")

CHANNEL = "tollway_config"
RECONNECT_SECONDS = 1.0

metadata = sa.MetaData()
cluster_nodes = sa.Table(
    "cluster_nodes", metadata,
    sa.Column("node_id", sa.String(64), primary_key=True),
    sa.Column("hostname", sa.Text, nullable=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("last_seen", sa.Double, nullable=False),
    sa.Column("applied_revision", sa.Integer),
    sa.Column("applied_hash", sa.String(32)),
)


def heartbeat(engine: Engine, node_id: str, hostname: str, started_at: float,
              revision: int | None, config_hash: str) -> None:
    """Upsert this node's row (last seen = now)."""
    t = cluster_nodes
    values = {"hostname": hostname, "started_at": started_at, "last_seen": time.time(),
              "applied_revision": revision, "applied_hash": config_hash}
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(t).values(node_id=node_id, **values).on_conflict_do_update(
        index_elements=["node_id"], set_=values)
    try:
        with engine.begin() as conn:
            conn.execute(stmt)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"heartbeat failed: {_reason(exc)}") from exc


def nodes(engine: Engine) -> list[dict[str, Any]]:
    """Every node that ever reported, most recently seen first."""
    t = cluster_nodes
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.last_seen.desc(),
                                                      t.c.node_id)).all()
            conn.rollback()
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"listing the cluster nodes failed: {_reason(exc)}") from exc
    return [dict(r._mapping) for r in rows]


def forget_before(engine: Engine, cutoff: float) -> int:
    """Delete the rows of nodes last seen before `cutoff` (epoch seconds)."""
    t = cluster_nodes
    try:
        with engine.begin() as conn:
            return int(conn.execute(t.delete().where(t.c.last_seen < cutoff)).rowcount or 0)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"pruning the cluster nodes failed: {_reason(exc)}") from exc


def notify(conn: sa.Connection, revision: int, config_hash: str) -> None:
    """Inside a revision's transaction: tell listening nodes (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_notify(:c, :p)"),
                     {"c": CHANNEL, "p": f"{revision}:{config_hash}"})


class Listener:
    """`LISTEN tollway_config` on a dedicated connection, in a daemon thread; `on_notify`
    is called (from that thread) with each payload, and with None after every
    (re)connection, since messages sent while disconnected are lost. Reconnects every
    RECONNECT_SECONDS while the database is down."""

    def __init__(self, engine: Engine, on_notify: Callable[[str | None], None]) -> None:
        self.engine = engine
        self.on_notify = on_notify
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._run, name="tollway-listen", daemon=True)

    def start(self) -> Listener:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()

    def _run(self) -> None:
        import psycopg

        dsn = self.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        while not self.stopping.is_set():
            try:
                with psycopg.connect(dsn, connect_timeout=2, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    self.on_notify(None)
                    while not self.stopping.is_set():
                        # the timeout lets the loop see `stopping`; a dead server raises
                        for n in conn.notifies(timeout=1.0):
                            self.on_notify(n.payload)
                        conn.execute("SELECT 1")
            except Exception as exc:  # psycopg's errors: the server is down or went away
                if self.connected.is_set():
                    log.warning("config change listener lost its connection: %s",
                                str(exc).strip().splitlines()[0] if str(exc) else exc)
                self.connected.clear()
                self.stopping.wait(RECONNECT_SECONDS)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
