"""Shared by the store integration tests: a PostgreSQL database of our own for the test
session (created and dropped here), and node settings for either backend."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import pytest

from tollway import settings as settings_mod
from tollway.settings import Settings

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
BACKENDS = ("sqlite", "postgres")


def missing_service(reason: str) -> None:
    """Skip with the reason, but fail under CI=true, where every service must be there."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


class PgDatabase:
    """A uniquely named database on the local server, dropped by `drop()`."""

    def __init__(self) -> None:
        import psycopg

        self.name = f"tollway_test_{os.getpid()}_{secrets.token_hex(4)}"
        try:
            admin = psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER,
                                    dbname="postgres", connect_timeout=3, autocommit=True)
        except psycopg.OperationalError as exc:
            missing_service(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} as "
                            f"{PG_USER}: {str(exc).strip().splitlines()[0]}")
            raise
        with admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres",
                             autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def env(self) -> dict[str, str]:
        return {"TOLLWAY_DATABASE": "postgres", "TOLLWAY_PG_HOST": PG_HOST,
                "TOLLWAY_PG_PORT": str(PG_PORT), "TOLLWAY_PG_USER": PG_USER,
                "TOLLWAY_PG_DATABASE": self.name}


def backend_env(backend: str, pg: PgDatabase | None, prefix: Path) -> dict[str, str]:
    env = {"TOLLWAY_PREFIX": str(prefix)}
    if backend == "postgres":
        assert pg is not None
        env.update(pg.env())
    else:
        env["TOLLWAY_DATABASE"] = "sqlite"
    return env


def load_settings(env: Mapping[str, str]) -> Settings:
    return settings_mod.load(env=env)
