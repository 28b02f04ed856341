"""Helpers for the rate-limiting tests (a unique module name: pytest shares sys.path)."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from dataplane_helpers import RawClient, Response

from tollway.config.schema import Field, Record
from tollway.plugins import registry
from tollway.plugins.base import Plugin


def doc(upstream_url: str, config: dict[str, Any], *, paths: tuple[str, ...] = ("/",),
        name: str | None = None, extra_plugins: list[dict[str, Any]] | None = None,
        ) -> dict[str, Any]:
    name = name or f"rl-{uuid.uuid4().hex[:12]}"
    return {"_format_version": "3.0", "services": [{
        "name": name, "url": upstream_url,
        "routes": [{"name": f"{name}-route", "paths": list(paths)}],
        "plugins": [{"name": "rate-limiting", "config": config}, *(extra_plugins or [])],
    }]}


def get(port: int, path: str = "/", headers: list[tuple[str, str]] | None = None) -> Response:
    c = RawClient(port)
    try:
        return c.request("GET", path, headers)
    finally:
        c.close()


def fresh_window(seconds: float = 0.6) -> None:
    """Wait until the current second has at least `seconds` left and no minute boundary is
    within 2 s, so a burst of requests stays inside one window of every period."""
    while True:
        now = time.time()
        frac = now % 1
        if frac < 1 - seconds and 2 < now % 60 < 58:
            return
        time.sleep(0.02)


def rl_headers(r: Response) -> dict[str, str]:
    return {n: v for n, v in r.headers
            if n.lower().startswith(("x-ratelimit", "ratelimit", "retry-after"))}


class FakeAuth(Plugin):
    """Authenticates `X-Test-Consumer: <name>` as a consumer of that name with a credential
    `X-Test-Credential` (when given); records the metrics flag for the tests."""

    name = "rl-test-auth"
    priority = 1000
    config_schema = Record(fields={"unused": Field.string()})
    seen_flags: list[Any] = []

    def access(self, req: Any) -> None:
        name = req.get_header("x-test-consumer")
        cred = req.get_header("x-test-credential")
        consumer = None
        if name:
            consumer = next((c for c in self.ctx.entities("consumers")
                             if c["username"] == name), None)
        credential = {"id": cred} if cred else None
        if consumer or credential:
            req.authenticate(consumer, credential)

    def log(self, req: Any) -> None:
        FakeAuth.seen_flags.append(req.ctx.get("rate_limit_exceeded"))


def register_fake_auth() -> None:
    registry.register(FakeAuth)


def unregister_fake_auth() -> None:
    registry.unregister(FakeAuth.name)


def redis_server(cwd: Path, port: int, *extra: str,
                 tls: bool = False) -> subprocess.Popen[bytes]:
    """A throwaway redis-server on 127.0.0.1 keeping nothing on disk; with `tls`, `port` is
    its TLS port and the plain one is off (`extra` then names the certificates)."""
    listen = ["--port", "0", "--tls-port", str(port)] if tls else ["--port", str(port)]
    return subprocess.Popen(["redis-server", *listen, "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", *extra], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(5)
