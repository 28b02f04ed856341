"""A throwaway PostgreSQL server for the cluster tests: its own data directory and port, so
a test can stop and restart it without touching the machine's shared server.

Built from the server binaries on this machine (`/usr/lib/postgresql/*/bin`); initdb refuses
to run as root, so as root the server runs as the `postgres` user (`runuser`). Missing
binaries or user → skip with the reason (a failure under CI=true).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayPostgres:
    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            _missing("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb); "
                     "apt-get install postgresql")
        self.bin = Path(found[-1]).parent
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            try:
                import pwd

                pwd.getpwnam("postgres")
            except KeyError:
                runuser = None
            if runuser is None:
                _missing("running as root without a 'postgres' user and runuser: initdb "
                         "refuses root")
            self.as_user = [str(runuser), "-u", "postgres", "--"]
        self.dir = Path(tempfile.mkdtemp(prefix="tollway-pg-"))
        os.chmod(self.dir, 0o777)  # the postgres user writes its data directory here
        self.data = self.dir / "data"
        self.port = _free_port()
        self.log = self.dir / "server.log"
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.as_user, str(self.bin / tool), *args], check=check,
                              capture_output=True, text=True, timeout=60)

    def start(self) -> None:
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} "
                "-c fsync=off -c max_connections=100")
        # the port may have been taken while the server was stopped: it is ours to reuse
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w",
                  "-t", "30", "start")

    def stop(self) -> None:
        # fast: active connections are cut, as when a database server goes away
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                                dbname="postgres", connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def env(self) -> dict[str, str]:
        return {"TOLLWAY_DATABASE": "postgres", "TOLLWAY_PG_HOST": "127.0.0.1",
                "TOLLWAY_PG_PORT": str(self.port), "TOLLWAY_PG_USER": "postgres",
                "TOLLWAY_PG_DATABASE": "postgres", "TOLLWAY_PG_TIMEOUT": "2000"}

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
