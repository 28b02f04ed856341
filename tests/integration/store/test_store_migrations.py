"""`tollway migrations bootstrap | up | status | reset` on SQLite and PostgreSQL, as real
subprocesses; and a node started on an un-migrated PostgreSQL."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

from node_support import TOLLWAY_CMD, Node, Upstream, simple_config
from store_support import load_settings

from tollway.config.declarative import validate
from tollway.controlplane.store import Store, migrate


def tollway(env: dict[str, str], *args: str, stdin: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")}
    full.update(env)
    return subprocess.run([*TOLLWAY_CMD, *args], env=full, capture_output=True, text=True,
                          timeout=60, input=stdin)


def test_bootstrap_up_status_reset(backend_env_vars: dict[str, str]) -> None:
    env = backend_env_vars
    r = tollway(env, "migrations", "status")
    assert (r.returncode, r.stdout.strip()) == (
        3, "Database needs bootstrapping; run 'tollway migrations bootstrap'")
    r = tollway(env, "migrations", "up")
    assert r.returncode == 1
    assert "database needs bootstrapping; run 'tollway migrations bootstrap'" in r.stderr

    r = tollway(env, "migrations", "bootstrap")
    assert r.returncode == 0, r.stderr
    assert "Bootstrapping database" in r.stdout and "applied 0001" in r.stdout
    assert r.stdout.strip().endswith("Database is up-to-date")
    r = tollway(env, "migrations", "bootstrap")
    assert (r.returncode, r.stdout.strip()) == (0, "Database already bootstrapped")
    r = tollway(env, "migrations", "up")
    assert (r.returncode, r.stdout.strip()) == (0, "Database is already up-to-date")
    r = tollway(env, "migrations", "status")
    assert r.returncode == 0
    assert "Executed migrations:\n  0001" in r.stdout and "Database is up-to-date" in r.stdout
    assert tollway(env, "migrations", "list").returncode == 0  # Kong's name

    # the schema is usable: a revision written, then reset drops it with everything else
    store = Store.open(load_settings(env))
    try:
        store.append(validate(simple_config("http://127.0.0.1:9")))
        r = tollway(env, "migrations", "reset", stdin="")  # not a tty, no --yes
        assert r.returncode == 1 and "--yes" in r.stderr
        assert store.count() == 1
        r = tollway(env, "migrations", "reset", "--yes")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().endswith("Database successfully reset")
        assert migrate.schema_state(store.engine).needs_bootstrap
    finally:
        store.close()
    r = tollway(env, "migrations", "reset", "-y")
    assert (r.returncode, r.stdout.strip()) == (1, "Database not bootstrapped, nothing to reset")
    assert tollway(env, "migrations", "status").returncode == 3


def test_migrations_refuse_dbless(tmp_path: Path) -> None:
    r = tollway({"TOLLWAY_DATABASE": "off", "TOLLWAY_PREFIX": str(tmp_path)},
                "migrations", "status")
    assert r.returncode == 1 and "database=off" in r.stderr


def test_unreachable_postgres_is_a_clear_error(tmp_path: Path) -> None:
    env = {"TOLLWAY_DATABASE": "postgres", "TOLLWAY_PG_HOST": "127.0.0.1",
           "TOLLWAY_PG_PORT": "1", "TOLLWAY_PG_TIMEOUT": "1000",
           "TOLLWAY_PREFIX": str(tmp_path)}
    r = tollway(env, "migrations", "status")
    assert r.returncode == 1
    assert "cannot reach the database" in r.stderr and "127.0.0.1" in r.stderr


def test_node_on_unmigrated_postgres_says_which_command_to_run(
        pg_database: object, tmp_path: Path) -> None:
    env = {**pg_database.env()}  # type: ignore[attr-defined]
    store = Store.open(load_settings(env))
    migrate.reset(store.engine)
    node = Node(tmp_path / "node", env=env, workers=1)
    assert node.run() == 1
    assert ("tollway not started: Database needs bootstrapping; run 'tollway migrations "
            "bootstrap'") in node.stderr()
    assert tollway(env, "migrations", "bootstrap").returncode == 0
    try:
        # a schema from a newer tollway: refused, and said so
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM alembic_version")
            conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('0000')")
        behind = Node(tmp_path / "behind", env=env, workers=1)
        assert behind.run() == 1
        assert "tollway not started: cannot use the database (postgres): the database " \
            "schema is at migration '0000', which this tollway does not know" in behind.stderr()
        r = tollway(env, "migrations", "up")
        assert r.returncode == 1 and "'0000'" in r.stderr and "Traceback" not in r.stderr
    finally:
        migrate.reset(store.engine)
        store.close()


def test_sqlite_node_migrates_itself_and_adopts_a_pre_alembic_history(
        store_nodes: Callable[..., Node], store_upstream: Upstream, tmp_path: Path) -> None:
    prefix = tmp_path / "legacy"
    prefix.mkdir()
    doc = simple_config(store_upstream.url)
    config = validate(doc)
    # the embedded store of the previous release: its table, no alembic_version
    with sqlite3.connect(prefix / "tollway.db") as db:
        db.execute("CREATE TABLE config_revisions (revision INTEGER PRIMARY KEY "
                   "AUTOINCREMENT, hash TEXT NOT NULL, created_at REAL NOT NULL, author TEXT,"
                   " message TEXT, entities TEXT NOT NULL)")
        db.execute("INSERT INTO config_revisions (hash, created_at, author, message, entities)"
                   " VALUES (?, 1.0, 'old', 'from before', ?)",
                   (config.hash, json.dumps(config.entities)))
    node = store_nodes(prefix=prefix, workers=1)
    assert node.status()["configuration_hash"] == config.hash
    assert node.get("/a").status_code == 200
    r = node.admin("GET", "/config/revisions")
    assert r.status_code == 200, r.text
    assert [(d["revision"], d["author"]) for d in r.json()["data"]] == [(1, "old")]
