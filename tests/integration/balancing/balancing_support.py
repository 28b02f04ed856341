"""Named HTTP targets for the balancing tests: tiny keep-alive servers that answer with
their own name, count hits and can be made slow, failing or dead (real sockets)."""

from __future__ import annotations

import asyncio
import http.client
import socket
from typing import Any

from dataplane_helpers import LoopThread


class Target:
    def __init__(self, lt: LoopThread, name: str, port: int = 0) -> None:
        self.lt = lt
        self.name = name
        self.status = 200
        self.delay = 0.0
        self.hits = 0
        self.probes = 0
        self.server: asyncio.AbstractServer | None = None
        self.port = port
        self.start()

    def start(self) -> None:
        async def make() -> asyncio.AbstractServer:
            return await asyncio.start_server(self._serve, "127.0.0.1", self.port,
                                              reuse_address=True)
        self.server = self.lt.run(make())
        self.port = self.server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        server = self.server
        self.server = None
        if server is not None:
            async def close() -> None:
                server.close()
                if hasattr(server, "close_clients"):
                    server.close_clients()
            self.lt.run(close())

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if self.server is None:
                    break
                if b"tollway-healthcheck" in head:
                    self.probes += 1
                else:
                    self.hits += 1
                if self.delay:
                    await asyncio.sleep(self.delay)
                body = self.name.encode()
                writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nX-Target: %s\r\n\r\n%s"
                             % (self.status, len(body), body, body))
                await writer.drain()
                if head.startswith(b"GET / HTTP/1.0"):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


def pinned_ports(n: int, base: int) -> list[int]:
    """`base`..`base+n-1` when all are free, else n ephemeral ports (0).

    A consistent-hashing ring hashes its targets' addresses, so targets on the same ports
    make the same ring every run and the split of a fixed key set repeats exactly; the
    ephemeral fallback keeps the test running on a machine where those ports are taken."""
    ports = list(range(base, base + n))
    for port in ports:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return [0] * n
    return ports


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def count(port: int, n: int, path: str = "/", headers: Any = None) -> dict[str, int]:
    """Send n GETs over one keep-alive connection; tally the answering target (or status)."""
    out: dict[str, int] = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(n):
        h = headers(i) if callable(headers) else (headers or {})
        conn.request("GET", path, headers=h)
        resp = conn.getresponse()
        body = resp.read()
        key = body.decode() if resp.status == 200 else str(resp.status)
        out[key] = out.get(key, 0) + 1
    conn.close()
    return out


def document(upstream: dict[str, Any], routes: Any = None) -> dict[str, Any]:
    return {"_format_version": "3.0", "upstreams": [upstream],
            "services": [{"name": "svc", "host": upstream["name"], "retries": 2,
                          "connect_timeout": 500, "read_timeout": 2000,
                          "routes": routes or [{"name": "r", "paths": ["/"]}]}]}
