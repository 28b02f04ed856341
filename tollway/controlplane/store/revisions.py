"""The revisioned config store: every accepted config is one immutable, numbered revision of
the whole config (normalised entities, content hash, author, message, timestamp), and the
created_at / updated_at of its entities (`times`, derived from the previous revision's).

A write is one transaction: lock the head row, check `If-Match` against the head's hash,
insert revision n+1, move the head. Either all of it commits or none of it does; two writers
(two admin requests, two nodes on one PostgreSQL) are serialised on the head row, so the
second one sees the first one's revision and its `If-Match` fails instead of overwriting.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tollway.config.model import EMPTY_HASH, Config
from tollway.controlplane.store import cluster
from tollway.controlplane.store import engine as engine_mod
from tollway.controlplane.store import times as times_mod
from tollway.controlplane.store.errors import PreconditionFailed, StoreError
from tollway.settings import Settings

metadata = sa.MetaData()
config_revisions = sa.Table(
    "config_revisions", metadata,
    sa.Column("revision", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.String(32), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("author", sa.Text),
    sa.Column("message", sa.Text),
    sa.Column("entities", sa.Text, nullable=False),
    sa.Column("times", sa.Text),  # migration 0003; NULL in revisions stored before
)
config_head = sa.Table(
    "config_head", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("revision", sa.Integer),
    sa.Column("hash", sa.String(32)),
)
_META = (config_revisions.c.revision, config_revisions.c.hash, config_revisions.c.created_at,
         config_revisions.c.author, config_revisions.c.message)


@dataclass(frozen=True)
class Revision:
    number: int
    hash: str
    created_at: float
    author: str | None
    message: str | None
    entities: dict[str, list[dict[str, Any]]] | None = None  # None in listings
    # entity id -> (created_at, updated_at), one per entity; None in listings
    times: times_mod.Times | None = None

    @property
    def config(self) -> Config:
        if self.entities is None:
            raise ValueError("revision loaded without its entities")
        return Config.from_entities(self.entities)

    def meta(self) -> dict[str, Any]:
        """The revision as the Admin API lists it."""
        return {"revision": self.number, "hash": self.hash,
                "created_at": int(self.created_at), "author": self.author,
                "message": self.message}


def etag(config_hash: str) -> str:
    return f'"{config_hash}"'


def if_match_ok(header: str, current_hash: str) -> bool:
    """RFC 9110 If-Match against the current config hash: `*`, or a comma-separated list of
    entity tags (quoted or not; a weak `W/` tag never matches, as the RFC's strong comparison
    requires)."""
    for tag in (t.strip() for t in header.split(",")):
        if tag == "*":
            return True
        if tag.startswith("W/"):
            continue
        if tag.strip('"') == current_hash:
            return True
    return False


class Store:
    """The config store on one database (SQLite or PostgreSQL). Every method is blocking:
    the supervisor calls them from a worker thread (`asyncio.to_thread`)."""

    def __init__(self, engine: Engine, description: str = "") -> None:
        self.engine = engine
        self.description = description or str(engine.url)

    @classmethod
    def open(cls, settings: Settings) -> Store:
        return cls(engine_mod.make_engine(settings), engine_mod.describe(settings))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # -- reads ------------------------------------------------------------------------------
    def latest(self) -> Revision | None:
        with self._conn() as conn:
            row = conn.execute(sa.select(config_revisions).order_by(
                config_revisions.c.revision.desc()).limit(1)).first()
        return _revision(row, full=True) if row is not None else None

    def get(self, number: int) -> Revision | None:
        with self._conn() as conn:
            row = conn.execute(sa.select(config_revisions).where(
                config_revisions.c.revision == number)).first()
        return _revision(row, full=True) if row is not None else None

    def page(self, size: int, before: int | None = None) -> list[Revision]:
        """Up to `size` revisions, newest first, numbered below `before` when given."""
        query = sa.select(*_META).order_by(config_revisions.c.revision.desc()).limit(size)
        if before is not None:
            query = query.where(config_revisions.c.revision < before)
        with self._conn() as conn:
            rows = conn.execute(query).all()
        return [_revision(r, full=False) for r in rows]

    def count(self) -> int:
        with self._conn() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(
                config_revisions)).scalar_one())

    def head(self) -> tuple[int | None, str]:
        """(latest revision number, its hash); (None, EMPTY_HASH) before the first one."""
        with self._conn() as conn:
            row = conn.execute(sa.select(config_head.c.revision, config_head.c.hash).where(
                config_head.c.id == 1)).first()
        if row is None or row[0] is None:
            return None, EMPTY_HASH
        return int(row[0]), str(row[1])

    # -- the write --------------------------------------------------------------------------
    def append(self, config: Config, author: str | None = None, message: str | None = None,
               if_match: str | None = None, touched: Collection[str] = ()
               ) -> tuple[Revision, bool]:
        """Store `config` as the next revision; returns (revision, created), the revision
        with its entity times. A config equal to the latest one (same hash) is not stored
        again: (latest, False). `if_match` (an If-Match header value) must match the latest
        hash, else PreconditionFailed and nothing is written. `touched`: entity ids the
        caller wrote, updated now even if unchanged (`times.carry`)."""
        entities = json.dumps(config.entities, sort_keys=True, separators=(",", ":"))
        try:
            with self.engine.begin() as conn:
                head = conn.execute(_lock_head(conn)).first()
                if head is None:
                    raise StoreError(f"{self.description}: the config_head row is missing; "
                                     "run 'tollway migrations reset' and 'bootstrap'")
                number = int(head[0]) if head[0] is not None else None
                current = str(head[1]) if head[1] is not None else EMPTY_HASH
                if if_match is not None and not if_match_ok(if_match, current):
                    raise PreconditionFailed(if_match, current, number)
                previous = None
                if number is not None:
                    previous = conn.execute(sa.select(config_revisions).where(
                        config_revisions.c.revision == number)).first()
                head_rev = _revision(previous, full=True) if previous is not None else None
                if head_rev is not None and current == config.hash:
                    return head_rev, False
                now = time.time()
                # the times are derived inside the transaction, from the head it replaces:
                # whichever node or caller writes, they carry on from the stored ones
                times = times_mod.carry(
                    head_rev.entities if head_rev is not None else None,
                    head_rev.times if head_rev is not None else None,
                    config.entities, int(now), touched)
                rev = Revision((number or 0) + 1, config.hash, now, author, message,
                               config.entities, times)
                conn.execute(config_revisions.insert().values(
                    revision=rev.number, hash=rev.hash, created_at=rev.created_at,
                    author=author, message=message, entities=entities,
                    times=times_mod.dumps(times)))
                conn.execute(config_head.update().where(config_head.c.id == 1).values(
                    revision=rev.number, hash=rev.hash))
                cluster.notify(conn, rev.number, rev.hash)
                return rev, True
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"{self.description}: storing the revision failed: "
                             f"{_reason(exc)}") from exc

    def close(self) -> None:
        self.engine.dispose()

    def _conn(self) -> Any:
        return _Reading(self)


class _Reading:
    """A connection for reads that turns driver errors into StoreError."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conn: Connection | None = None

    def __enter__(self) -> Connection:
        try:
            self.conn = self.store.engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"{self.store.description}: {_reason(exc)}") from exc
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self.conn is not None
        self.conn.rollback()
        self.conn.close()
        if isinstance(exc, sa.exc.SQLAlchemyError):
            raise StoreError(f"{self.store.description}: {_reason(exc)}") from exc


def _lock_head(conn: Connection) -> sa.Select[Any]:
    query = sa.select(config_head.c.revision, config_head.c.hash).where(config_head.c.id == 1)
    # SQLite already holds the write lock (BEGIN IMMEDIATE); PostgreSQL locks the row
    return query.with_for_update() if conn.dialect.name == "postgresql" else query


def _revision(row: Any, full: bool) -> Revision:
    """A Revision from a row; `full`: with its entities and their times (one per entity,
    also for a revision stored before times were kept: `times.stored`)."""
    m = row._mapping
    created_at = float(m["created_at"])
    entities = times = None
    if full:
        entities = json.loads(m["entities"])
        times = times_mod.stored(entities, times_mod.loads(m["times"]), created_at)
    return Revision(int(m["revision"]), str(m["hash"]), created_at, m["author"],
                    m["message"], entities, times)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
