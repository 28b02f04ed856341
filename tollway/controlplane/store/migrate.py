"""Schema migrations (Alembic, driven from code: no alembic.ini, no env.py).

The scripts live in `migrations/versions/` (package data). The states and messages follow
Kong's `kong migrations` (kong/cmd/utils/migrations.lua):

    no alembic_version row ──bootstrap──► up to date ◄──up── behind (new migrations)
             ▲                                │
             └────────────── reset ───────────┘

`tollway start` migrates SQLite itself (the one-command default); on PostgreSQL it only
checks, and names the command to run (`check`), because several nodes share the database
and an operator decides when its schema changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from tollway.controlplane.store.errors import NotMigrated, StoreError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# every table the migrations create (dropped by reset), dependants first
TABLES = ("cluster_nodes", "ratelimiting_metrics", "config_head", "config_revisions",
          "alembic_version")
# pg_advisory_xact_lock key: one migrating node at a time (Kong's "migrations" mutex)
PG_LOCK_KEY = 0x746F6C6C  # "toll"

NEEDS_BOOTSTRAP = "Database needs bootstrapping; run 'tollway migrations bootstrap'"
NEW_MIGRATIONS = "New migrations available; run 'tollway migrations up' to proceed"


@dataclass(frozen=True)
class SchemaState:
    executed: list[str]  # revision ids applied, oldest first
    new: list[str]  # revision ids not applied yet, oldest first

    @property
    def needs_bootstrap(self) -> bool:
        return not self.executed

    @property
    def up_to_date(self) -> bool:
        return bool(self.executed) and not self.new


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_alembic_config())


def _describe(script: ScriptDirectory, revs: Iterable[str]) -> list[str]:
    out = []
    for rev in revs:
        sc = script.get_revision(rev)
        doc = (sc.doc or "").strip() if sc is not None else ""
        out.append(f"{rev} ({doc})" if doc else rev)
    return out


def _all_revisions(script: ScriptDirectory) -> list[str]:
    """Every revision id, oldest first (one linear history)."""
    return [sc.revision for sc in reversed(list(script.walk_revisions()))]


def schema_state(engine: Engine) -> SchemaState:
    script = _script()
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
            conn.rollback()
    except sa.exc.OperationalError as exc:
        raise StoreError(f"cannot reach the database: {_reason(exc)}") from exc
    revs = _all_revisions(script)
    if not current:
        return SchemaState([], revs)
    done: set[str] = set()
    for head in current:
        if head not in revs:
            raise StoreError(f"the database schema is at migration {head!r}, which this "
                             "tollway does not know (migrated by a newer version?)")
        done.update(sc.revision for sc in script.iterate_revisions(head, "base"))
    return SchemaState([r for r in revs if r in done], [r for r in revs if r not in done])


def describe_state(state: SchemaState) -> tuple[list[str], list[str]]:
    script = _script()
    return _describe(script, state.executed), _describe(script, state.new)


def check(engine: Engine) -> SchemaState:
    """Raise NotMigrated (naming the command) unless the schema is up to date."""
    state = schema_state(engine)
    if state.needs_bootstrap:
        raise NotMigrated(NEEDS_BOOTSTRAP)
    if state.new:
        raise NotMigrated(NEW_MIGRATIONS)
    return state


def upgrade(engine: Engine) -> list[str]:
    """Apply every new migration in one transaction; returns the revisions applied."""
    cfg = _alembic_config()
    script = ScriptDirectory.from_config(cfg)
    applied: list[str] = []

    def run(rev: Any, context: Any) -> Any:
        steps = script._upgrade_revs("head", rev)
        applied.extend(step.revision.revision for step in steps)
        return steps

    try:
        with engine.begin() as conn:
            _lock(conn)
            with EnvironmentContext(cfg, script, fn=run, destination_rev="head") as env:
                env.configure(connection=conn)
                env.run_migrations()
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"migration failed: {_reason(exc)}") from exc
    return applied


def reset(engine: Engine) -> None:
    """Drop every table the migrations created, in one transaction."""
    try:
        with engine.begin() as conn:
            _lock(conn)
            existing = set(sa.inspect(conn).get_table_names())
            for table in TABLES:
                if table in existing:
                    conn.exec_driver_sql(f'DROP TABLE "{table}"')
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"reset failed: {_reason(exc)}") from exc


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        # held until commit: a second node running `migrations up` waits, then finds nothing
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
