"""The config store: revisions of the whole config, and the rate-limiting counters, in one
database — SQLite (`<prefix>/tollway.db`, the embedded default) or PostgreSQL — through
SQLAlchemy 2 Core, with the schema managed by Alembic migrations (`migrate`).

    open_store(settings)      -> Store     the supervisor's: revisions (revisions.py)
    Counters.open(settings)   -> Counters  a worker's: rate-limiting `cluster` counters
    migrate.bootstrap/up/reset/schema_state  `tollway migrations ...`

With `database = off` there is no store at all.
"""

from __future__ import annotations

from tollway.controlplane.store import migrate
from tollway.controlplane.store.counters import Counters
from tollway.controlplane.store.errors import NotMigrated, PreconditionFailed, StoreError
from tollway.controlplane.store.revisions import Revision, Store, etag, if_match_ok
from tollway.settings import Settings

__all__ = ["Counters", "NotMigrated", "PreconditionFailed", "Revision", "Store", "StoreError",
           "etag", "if_match_ok", "open_store"]


def open_store(settings: Settings) -> Store:
    """The node's store, ready for writes. SQLite migrates itself (the one-command
    default); PostgreSQL must already be migrated, else NotMigrated names the command."""
    store = Store.open(settings)
    try:
        if settings.database == "sqlite":
            if not migrate.schema_state(store.engine).up_to_date:
                migrate.upgrade(store.engine)
        else:
            migrate.check(store.engine)
    except BaseException:
        store.close()
        raise
    return store
