"""The embedded config store: every accepted config is a numbered revision in SQLite.

This is the minimal store of the data-plane milestone: a file under the node's prefix that
survives restarts, so `tollway start` with no `--config` serves what it served last. The
full revisioned store (SQLAlchemy + Alembic, PostgreSQL, history API) replaces it with the
control-plane work; the table keeps the same meaning.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from tollway.config.model import Config

SCHEMA = """
CREATE TABLE IF NOT EXISTS config_revisions (
    revision   INTEGER PRIMARY KEY AUTOINCREMENT,
    hash       TEXT    NOT NULL,
    created_at REAL    NOT NULL,
    author     TEXT,
    message    TEXT,
    entities   TEXT    NOT NULL
)
"""


class EmbeddedStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(SCHEMA)

    def latest(self) -> tuple[int, Config] | None:
        row = self.db.execute(
            "SELECT revision, entities FROM config_revisions ORDER BY revision DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return int(row[0]), Config.from_entities(json.loads(row[1]))

    def append(self, config: Config, author: str | None = None,
               message: str | None = None) -> int:
        """Store `config` as a new revision in one transaction; an identical config (same
        hash as the latest) is not stored again."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute(
                "SELECT revision, hash FROM config_revisions ORDER BY revision DESC LIMIT 1"
            ).fetchone()
            if row is not None and row[1] == config.hash:
                return int(row[0])
            cur = self.db.execute(
                "INSERT INTO config_revisions (hash, created_at, author, message, entities) "
                "VALUES (?, ?, ?, ?, ?)",
                (config.hash, time.time(), author, message,
                 json.dumps(config.entities, separators=(",", ":"))),
            )
            return int(cur.lastrowid or 0)

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM config_revisions").fetchone()[0])

    def close(self) -> None:
        self.db.close()
