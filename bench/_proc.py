"""Process plumbing for the bench: free ports, CPU pinning, process groups, readiness."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

# CPU layouts. Keys are roles; values are the CPUs a role's processes may run on.
# "split": the load generator gets a core of its own; the system under test and the upstream
#          share the other one (default: the most stable numbers on a 2-core box, and a proxy
#          that burns CPU is charged for it).
# "proxy-alone": the system under test alone on one core; wrk and the upstream share the other.
# "none": no pinning.
PINNINGS: dict[str, dict[str, set[int]]] = {
    "split": {"wrk": {1}, "sut": {0}, "upstream": {0}},
    "proxy-alone": {"wrk": {1}, "sut": {0}, "upstream": {1}},
    "none": {},
}


def usable_cpus() -> set[int]:
    return set(os.sched_getaffinity(0))


def pinner(cpus: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` pinning the child (and everything it forks) to ``cpus``."""
    if not cpus:
        return None
    frozen = set(cpus)

    def _pin() -> None:
        os.sched_setaffinity(0, frozen)

    return _pin


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Managed:
    """A child process started in its own session (so its whole group can be killed)."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 20) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self, grace_s: float = 8.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after ``grace_s``."""
        pgid = self.proc.pid  # start_new_session=True: pid == pgid
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        # Children (nginx workers, tollway workers) may outlive the leader briefly.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


class ProcessSet:
    """Every child the bench starts; ``stop_all`` is called from a ``finally``."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.children: list[Managed] = []

    def start(
        self,
        name: str,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cpus: set[int] | None = None,
        cwd: Path | None = None,
    ) -> Managed:
        log = self.logdir / f"{name}.log"
        with log.open("ab") as fh:
            proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=pinner(cpus),
            )
        child = Managed(name, proc, log)
        self.children.append(child)
        return child

    def stop(self, child: Managed) -> None:
        child.stop()
        if child in self.children:
            self.children.remove(child)

    def stop_since(self, mark: int) -> None:
        """Stop the children started after ``len(self.children)`` was ``mark``."""
        while len(self.children) > mark:
            self.children.pop().stop()

    def stop_all(self) -> None:
        while self.children:
            self.children.pop().stop()


def http_get(
    url: str, timeout: float = 2.0, headers: Mapping[str, str] | None = None
) -> tuple[int, bytes]:
    status, _, body = http_get_full(url, timeout, headers)
    return status, body


def http_get_full(
    url: str, timeout: float = 2.0, headers: Mapping[str, str] | None = None
) -> tuple[int, Message, bytes]:
    """GET with request ``headers``; the status, the (case-insensitive) response headers, body."""
    req = urllib.request.Request(url, method="GET", headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.headers, exc.read()


def http_post(url: str, body: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/octet-stream"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def wait_http_ok(
    url: str,
    child: Managed,
    timeout_s: float = 30.0,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Poll ``url`` (sending ``headers``) until it answers 200; fail early if ``child`` died."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(
                f"{child.name} exited with {child.proc.returncode} before it was ready:\n"
                f"{child.log_tail()}"
            )
        try:
            status, _ = http_get(url, timeout=1.0, headers=headers)
            if status == 200:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"{child.name} not ready after {timeout_s:.0f}s ({url}: {last})")
