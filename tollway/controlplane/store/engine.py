"""One SQLAlchemy engine per process for the configured database.

* `database = sqlite` (the embedded default): the file `<prefix>/tollway.db`. Every
  transaction starts with `BEGIN IMMEDIATE`, so a transaction that reads then writes (the
  `If-Match` check, a rate-limiting counter) holds the write lock from its first statement:
  two processes can never both read the same state and both write on it. WAL lets readers
  in other processes (workers, `tollway migrations status`) go on meanwhile.
* `database = postgres`: `pg_*` settings as kong.conf's, through psycopg 3.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine

from tollway.controlplane.store.errors import StoreError
from tollway.settings import Settings

SQLITE_FILE = "tollway.db"
SQLITE_BUSY_MS = 30_000


def sqlite_path(settings: Settings) -> str:
    return str(settings.prefix / SQLITE_FILE)


def pg_url(settings: Settings) -> URL:
    v = settings.values
    try:
        port = int(v.get("pg_port", "5432"))
    except ValueError:
        raise StoreError(f"pg_port: expected an integer, got {v.get('pg_port')!r}") from None
    return URL.create("postgresql+psycopg", username=v.get("pg_user") or None,
                      password=v.get("pg_password") or None, host=v.get("pg_host") or None,
                      port=port, database=v.get("pg_database") or None)


def describe(settings: Settings) -> str:
    """The database in messages (never the password)."""
    if settings.database == "sqlite":
        return f"SQLite database {sqlite_path(settings)}"
    v = settings.values
    return (f"PostgreSQL database '{v.get('pg_database')}' at {v.get('pg_host')}:"
            f"{v.get('pg_port')} (user '{v.get('pg_user')}')")


def make_engine(settings: Settings) -> Engine:
    if settings.database == "sqlite":
        settings.prefix.mkdir(parents=True, exist_ok=True)
        return sqlite_engine(sqlite_path(settings))
    if settings.database == "postgres":
        v = settings.values
        try:
            timeout_ms = int(v.get("pg_timeout", "5000"))
        except ValueError:
            raise StoreError(f"pg_timeout: expected an integer (milliseconds), got "
                             f"{v.get('pg_timeout')!r}") from None
        connect_args: dict[str, Any] = {"connect_timeout": max(1, timeout_ms // 1000)}
        if v.get("pg_ssl", "off").strip().lower() in ("on", "true", "yes", "1"):
            connect_args["sslmode"] = "require"
        return create_engine(pg_url(settings), connect_args=connect_args,
                             pool_pre_ping=True, pool_size=2, max_overflow=4)
    raise StoreError(f"database={settings.database}: no store (DB-less)")


def sqlite_engine(path: str) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={
        # the store is used from the admin loop's worker threads; SQLAlchemy's pool hands a
        # connection to one thread at a time
        "check_same_thread": False,
        "timeout": SQLITE_BUSY_MS / 1000,
    })

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling would defer BEGIN; we issue it ourselves below
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
