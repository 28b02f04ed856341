"""Helpers for the node integration tests: a real `tollway start` subprocess and a tiny
threaded HTTP upstream, both on 127.0.0.1 with ports picked at run time."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

BIN = Path(sys.executable).with_name("tollway")
TOLLWAY_CMD = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "tollway"]
SLOW_SECONDS = 1.5


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free on 127.0.0.1 now, and never one this process was given before: the kernel
    may hand a just-released port straight back, and a node's proxy and admin listeners
    then got the same one (CI: both on 44169; with SO_REUSEPORT both bind, and /status
    went to the proxy)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.1,
               what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (httpx.HTTPError, OSError, ValueError) as exc:
            # ValueError: a body that is not JSON yet (e.g. Prometheus's plain-text
            # "Service Unavailable" while it starts)
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: "
                         f"{last_exc!r})")


# -- the upstream ---------------------------------------------------------------------------


class Upstream:
    """A keep-alive HTTP/1.1 upstream answering every request with JSON describing it:
    `{"upstream": name, "method", "path", "headers"}`. Paths starting with `/slow` answer
    after SLOW_SECONDS and set `slow_started` when they arrive."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.slow_started = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                if self.path.startswith("/slow"):
                    upstream.slow_started.set()
                    time.sleep(SLOW_SECONDS)
                body = json.dumps({
                    "upstream": upstream.name,
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 256

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       kwargs={"poll_interval": 0.05})
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- declarative configs --------------------------------------------------------------------


def config_doc(*services: Mapping[str, Any]) -> dict[str, Any]:
    return {"_format_version": "3.0", "services": [dict(s) for s in services]}


def service(name: str, url: str, routes: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """A service with one route per `routes` item (route name -> paths)."""
    return {"name": name, "url": url,
            "routes": [{"name": rname, "paths": list(paths)} for rname, paths in routes.items()]}


def simple_config(url: str, path: str = "/a", name: str = "a") -> dict[str, Any]:
    return config_doc(service(f"svc-{name}", url, {f"route-{name}": [path]}))


def to_yaml(doc: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(doc), sort_keys=False)


# -- the node -------------------------------------------------------------------------------


class Node:
    """`tollway start` as a subprocess with its own ports and prefix; stdout and stderr go to
    files under `workdir` (never pipes, so a chatty node cannot block on a full pipe)."""

    def __init__(self, workdir: Path, *, prefix: Path | None = None,
                 config: Mapping[str, Any] | str | Path | None = None,
                 env: Mapping[str, str | None] | None = None, args: Iterable[str] = (),
                 access_log: str | None = "off", workers: int = 2) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.prefix = prefix or workdir / "prefix"
        self.proxy_port = free_port()
        self.admin_port = free_port()
        self.args = list(args)
        self.config_path: Path | None = None
        if isinstance(config, Mapping):
            self.config_path = workdir / "kong.yaml"
            self.config_path.write_text(to_yaml(config))
        elif isinstance(config, str | Path):
            self.config_path = Path(config)
        if self.config_path is not None:
            self.args = ["--config", str(self.config_path), *self.args]
        base = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")}
        base.update({
            "TOLLWAY_PROXY_LISTEN": f"127.0.0.1:{self.proxy_port}",
            "TOLLWAY_ADMIN_LISTEN": f"127.0.0.1:{self.admin_port}",
            "TOLLWAY_PREFIX": str(self.prefix),
            "TOLLWAY_WORKERS": str(workers),
            "TOLLWAY_GRACEFUL_TIMEOUT": "5",
        })
        if access_log is not None:
            base["TOLLWAY_PROXY_ACCESS_LOG"] = access_log
        for k, v in (env or {}).items():
            if v is None:
                base.pop(k, None)
            else:
                base[k] = v
        self.env = base
        self.proc: subprocess.Popen[bytes] | None = None
        self.stdout_path = workdir / "stdout.log"
        self.stderr_path = workdir / "stderr.log"
        self.proxy_url = f"http://127.0.0.1:{self.proxy_port}"
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"

    # -- process ----------------------------------------------------------------------------
    def spawn(self) -> Node:
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen([*TOLLWAY_CMD, "start", *self.args], env=self.env,
                                         stdout=out, stderr=err, cwd=self.workdir)
        return self

    def start(self, timeout: float = 20.0) -> Node:
        self.spawn()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"tollway start exited with {self.proc.returncode}:\n"
                                     f"{self.stderr()}")
            try:
                if httpx.get(self.admin_url + "/status", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"node not ready after {timeout} s:\n{self.stderr()}")

    def run(self, timeout: float = 20.0) -> int:
        """Run to completion (for start-up failures); returns the exit code."""
        self.spawn()
        assert self.proc is not None
        return self.proc.wait(timeout)

    def terminate(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait; SIGKILL (and return None) if the node does not exit in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the supervisor and whatever workers it still has."""
        pids = []
        try:
            pids = [w["pid"] for w in self.status(timeout=1.0)["workers"]]
        except Exception:
            pass
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    # -- HTTP -------------------------------------------------------------------------------
    def admin(self, method: str, path: str, timeout: float = 15.0,
              **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.admin_url + path, timeout=timeout, **kwargs)

    def status(self, timeout: float = 5.0) -> dict[str, Any]:
        r = self.admin("GET", "/status", timeout=timeout)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def post_config(self, doc: Mapping[str, Any], **params: str) -> httpx.Response:
        return self.admin("POST", "/config", json=dict(doc), params=params)

    def get(self, path: str, timeout: float = 10.0, **kwargs: Any) -> httpx.Response:
        """One proxied request on a fresh connection (so the kernel may pick either worker)."""
        return httpx.request(kwargs.pop("method", "GET"), self.proxy_url + path,
                             timeout=timeout, **kwargs)

    def get_many(self, path: str, n: int = 8) -> list[httpx.Response]:
        return [self.get(path) for _ in range(n)]

    def worker_pids(self) -> list[int]:
        return [int(w["pid"]) for w in self.status()["workers"]]
