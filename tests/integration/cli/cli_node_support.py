"""Support for the config-as-code CLI tests: a real node per database kind (SQLite, and a
fresh PostgreSQL database per node), and the `tollway` command run as a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "node"))
from node_support import TOLLWAY_CMD, Node

DB_KINDS = ["sqlite", "postgres"]
PG_USER = "postgres"


def _psql(*sql: str) -> subprocess.CompletedProcess[str]:
    args = ["psql", "-h", "127.0.0.1", "-U", PG_USER, "-d", "postgres", "-v", "ON_ERROR_STOP=1"]
    for s in sql:
        args += ["-c", s]
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


def postgres_or_skip() -> None:
    reason = None
    if shutil.which("psql") is None:
        reason = "psql not installed"
    else:
        r = _psql("SELECT 1")
        if r.returncode != 0:
            reason = f"PostgreSQL on 127.0.0.1:5432 not reachable: {r.stderr.strip()}"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)


def tollway(*args: str, env: dict[str, str] | None = None, input: str | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")}
    full_env.update(env or {})
    return subprocess.run([*TOLLWAY_CMD, *args], capture_output=True, text=True, env=full_env,
                          input=input, timeout=60, cwd=cwd)


class CliNode:
    """A node plus `run(...)`: the tollway command pointed at its admin API."""

    def __init__(self, workdir: Path, kind: str, env: dict[str, str | None] | None = None,
                 config: Any = None) -> None:
        node_env: dict[str, str | None] = {"TOLLWAY_DATABASE": kind}
        self.database: str | None = None
        if kind == "postgres":
            postgres_or_skip()
            self.database = "tollway_cli_" + uuid.uuid4().hex[:12]
            r = _psql(f'CREATE DATABASE "{self.database}"')
            assert r.returncode == 0, r.stderr
            node_env.update({"TOLLWAY_PG_USER": PG_USER, "TOLLWAY_PG_DATABASE": self.database,
                             "TOLLWAY_PG_HOST": "127.0.0.1"})
            boot = tollway("migrations", "bootstrap",
                           env={k: v for k, v in node_env.items() if v is not None})
            assert boot.returncode == 0, boot.stdout + boot.stderr
        node_env.update(env or {})
        self.node = Node(workdir, env=node_env, config=config, workers=1).start()
        self.admin_url = self.node.admin_url

    def run(self, *args: str, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        return tollway(*args, env={"TOLLWAY_ADMIN_URL": self.admin_url, **(env or {})},
                       input=input)

    def revision(self) -> int | None:
        value = self.node.status().get("configuration_revision")
        return int(value) if value is not None else None

    def stop(self) -> None:
        self.node.stop()
        if self.database:
            _psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
