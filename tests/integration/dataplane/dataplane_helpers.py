"""Building blocks for the data-plane integration tests (imported by conftest and the tests).

* `LoopThread`: an event loop (uvloop for the gateway) running in a daemon thread.
* `Gateway`: a `tollway.dataplane.server.Worker` served in-process on such a loop.
* `Upstream`: a scriptable raw-socket HTTP/1.1 server (asyncio) that records every request
  byte for byte and answers with a per-test `behaviour`.
* `RawClient` / `read_response`: a blocking socket client that parses responses itself, so
  framing (Content-Length, chunked, close-delimited, 1xx) is checked byte-exactly.

The module name is unique on purpose: pytest puts every test directory on sys.path, and two
modules called `helpers` (or `conftest`) in different directories would shadow each other.
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvloop

from tollway import settings as settings_mod
from tollway.config.declarative import validate
from tollway.dataplane.server import Worker

REQUEST_ID = re.compile(r"[0-9a-f]{32}")
TEXT_502 = re.compile(
    r"An invalid response was received from the upstream server\nrequest_id: [0-9a-f]{32}\n")
TEXT_504 = re.compile(r"The upstream server is timing out\nrequest_id: [0-9a-f]{32}\n")


def json_error(message: str) -> re.Pattern[str]:
    """Kong's kong.response.error JSON body (3.5+ template, §2.12), byte for byte."""
    return re.compile(r'\{\n  "message":"' + re.escape(message)
                      + r'",\n  "request_id":"[0-9a-f]{32}"\n\}')


# ---------------------------------------------------------------------------------------------
# event loops in threads


class LoopThread:
    def __init__(self, use_uvloop: bool = True, name: str = "loop") -> None:
        self.loop = uvloop.new_event_loop() if use_uvloop else asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 10.0) -> Any:
        async def wrapper() -> Any:
            return fn(*args)
        return self.run(wrapper(), timeout)

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            self.run(cancel_all(), timeout=5)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


# ---------------------------------------------------------------------------------------------
# the gateway


class Gateway:
    """A Worker on its own uvloop thread. `port` is the proxy port."""

    def __init__(self, document: dict[str, Any], overrides: dict[str, str]) -> None:
        values = {"proxy_listen": "127.0.0.1:0", "proxy_access_log": "off",
                  "admin_listen": "off", "dns_hostsfile": ""}
        values.update(overrides)
        self.settings = settings_mod.load(env={}, overrides=values)
        self.config = validate(document)
        self.lt = LoopThread(use_uvloop=True, name="gateway")

        async def make() -> Worker:
            worker = Worker(self.settings, self.config, asyncio.get_running_loop())
            await worker.start()
            return worker

        self.worker: Worker = self.lt.run(make())
        self.state = self.worker.state
        self.port: int = self.worker.ports()[0]
        self.url = f"http://127.0.0.1:{self.port}"

    def swap(self, document_or_config: Any) -> None:
        config = (validate(document_or_config) if isinstance(document_or_config, dict)
                  else document_or_config)
        self.lt.call(self.state.swap, config)

    def close(self) -> None:
        try:
            self.lt.run(self.worker.close(), timeout=5)
        finally:
            self.lt.stop()


# ---------------------------------------------------------------------------------------------
# scriptable upstream


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes  # exactly the bytes received for this request (head + framed body)
    conn_id: int
    chunked: bool = False
    body_size: int = 0  # bytes of body received (bodies over KEEP_BODY are counted only)

    def header(self, name: str) -> str | None:
        vals = self.all(name)
        return vals[0] if vals else None

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def names(self) -> set[str]:
        return {n.lower() for n, _ in self.headers}


class Closed(Exception):
    pass


@dataclass
class UpConn:
    """One upstream-side connection, handed to behaviours."""

    id: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    upstream: Upstream
    requests: int = 0
    closed: bool = False

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def reset(self) -> None:
        """Abort with RST (SO_LINGER 0)."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()
        self.closed = True

    def close(self) -> None:
        self.writer.close()
        self.closed = True


Behaviour = Callable[[UpConn, Request], Awaitable[None]]


Headers = list[tuple[str, str]]


def response_bytes(status: int = 200, body: bytes = b"ok", headers: Headers | None = None,
                   *, reason: str = "OK", content_length: bool = True) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}\r\n"]
    for n, v in headers or []:
        lines.append(f"{n}: {v}\r\n")
    if content_length:
        lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + body


def respond(status: int = 200, body: bytes = b"ok", headers: Headers | None = None,
            *, reason: str = "OK", close: bool = False) -> Behaviour:
    async def b(conn: UpConn, req: Request) -> None:
        await conn.send(response_bytes(status, body, headers, reason=reason))
        if close:
            conn.close()
    return b


async def echo_path(conn: UpConn, req: Request) -> None:
    """200 whose body is the request target: lets tests see which request was answered."""
    await conn.send(response_bytes(200, req.target.encode(), [("Content-Type", "text/plain")]))


async def echo_body(conn: UpConn, req: Request) -> None:
    await conn.send(response_bytes(200, req.body, [("X-Body-Length", str(len(req.body)))]))


async def reset(conn: UpConn, req: Request) -> None:
    conn.reset()


async def hang(conn: UpConn, req: Request) -> None:
    await asyncio.sleep(3600)


def slow(delay: float, then: Behaviour = echo_path) -> Behaviour:
    async def b(conn: UpConn, req: Request) -> None:
        await asyncio.sleep(delay)
        await then(conn, req)
    return b


def chunked(parts: list[bytes], headers: list[tuple[str, str]] | None = None) -> Behaviour:
    async def b(conn: UpConn, req: Request) -> None:
        head = response_bytes(200, b"", [*(headers or []), ("Transfer-Encoding", "chunked")],
                              content_length=False)
        await conn.send(head)
        for p in parts:
            await conn.send(b"%x\r\n%s\r\n" % (len(p), p))
        await conn.send(b"0\r\n\r\n")
    return b


def close_delimited(body: bytes) -> Behaviour:
    async def b(conn: UpConn, req: Request) -> None:
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        await conn.send(body)
        conn.close()
    return b


def raw(fn: Callable[[UpConn, None], Awaitable[None]]) -> Behaviour:
    """Mark a behaviour that reads the connection itself (no request parsing first)."""
    fn.raw = True  # type: ignore[attr-defined]
    return fn  # type: ignore[return-value]


def sequence(*behaviours: Behaviour) -> Behaviour:
    """The n-th request (over all connections) gets the n-th behaviour; the last repeats."""
    calls = {"n": 0}

    async def b(conn: UpConn, req: Request) -> None:
        i = min(calls["n"], len(behaviours) - 1)
        calls["n"] += 1
        await behaviours[i](conn, req)
    return b


async def websocket_echo(conn: UpConn, req: Request) -> None:
    await conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\n"
                    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    up = conn.upstream
    while True:
        data = await conn.reader.read(65536)
        if not data:
            up.tunnel_eof.set()
            conn.close()
            return
        up.tunnel_received.extend(data)
        if data == b"server-close":
            conn.close()
            return
        await conn.send(data)


class Upstream:
    """A raw HTTP/1.1 origin on 127.0.0.1:<random>. `behaviour` answers each request."""

    def __init__(self, lt: LoopThread, behaviour: Behaviour = echo_path) -> None:
        self.lt = lt
        self.behaviour = behaviour
        self.requests: list[Request] = []
        self.connections = 0
        self.open_connections = 0
        self.tunnel_received = bytearray()
        self.tunnel_eof = asyncio.Event()
        self._conns: list[UpConn] = []

        async def start() -> asyncio.AbstractServer:
            self.tunnel_eof = asyncio.Event()
            return await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=1 << 20)

        self.server = lt.run(start())
        self.port: int = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_connections += 1
        conn = UpConn(self.connections, reader, writer, self)
        self._conns.append(conn)
        try:
            if getattr(self.behaviour, "raw", False):  # handles the bytes itself
                await self.behaviour(conn, None)  # type: ignore[arg-type]
                return
            while not conn.closed:
                try:
                    req = await read_request(reader, conn.id)
                except Closed:
                    break
                self.requests.append(req)
                conn.requests += 1
                await self.behaviour(conn, req)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_connections -= 1
            if not conn.closed:
                writer.close()

    def paths(self) -> list[str]:
        return [r.target for r in self.requests]

    def wait_requests(self, n: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < n and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            for c in self._conns:
                if not c.closed:
                    c.writer.transport.abort()
        try:
            self.lt.run(stop(), timeout=5)
        except Exception:
            pass


KEEP_BODY = 64 << 20


async def read_request(reader: asyncio.StreamReader, conn_id: int) -> Request:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise Closed from exc
    except asyncio.LimitOverrunError as exc:
        raise Closed from exc
    raw = bytearray(head)
    lines = head[:-4].decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name, value.strip()))
    req = Request(method, target, version, headers, b"", b"", conn_id)
    te = req.header("transfer-encoding")
    body = bytearray()
    if te is not None and te.lower().endswith("chunked"):
        req.chunked = True
        while True:
            size_line = await reader.readuntil(b"\r\n")
            raw += size_line
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                # trailers, then the final CRLF
                while True:
                    line = await reader.readuntil(b"\r\n")
                    raw += line
                    if line == b"\r\n":
                        break
                break
            data = await reader.readexactly(size + 2)
            if data[-2:] != b"\r\n":
                raise AssertionError(f"bad chunk framing from the gateway: {data[-64:]!r}")
            req.body_size += size
            if req.body_size <= KEEP_BODY:
                raw += data
                body += data[:-2]
    elif req.header("content-length") is not None:
        n = int(req.header("content-length") or "0")
        if n > KEEP_BODY:  # big uploads: count, do not keep
            left = n
            while left:
                data = await reader.read(min(left, 1 << 20))
                if not data:
                    raise Closed
                left -= len(data)
                req.body_size += len(data)
            req.body = b""
            req.raw = bytes(raw)
            return req
        data = await reader.readexactly(n)
        raw += data
        body += data
        req.body_size = n
    req.body = bytes(body)
    req.raw = bytes(raw)
    return req


# ---------------------------------------------------------------------------------------------
# raw client


@dataclass
class Response:
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes
    chunked: bool = False
    interim: list[int] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        vals = self.all(name)
        return vals[0] if vals else None

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@contextmanager
def upstream_thread(behaviour: Behaviour = echo_path, name: str = "upstream"
                    ) -> Iterator[Upstream]:
    """An Upstream on its own asyncio thread (not uvloop: independent of the gateway's
    loop), closed with the thread."""
    lt = LoopThread(use_uvloop=False, name=name)
    up = Upstream(lt, behaviour)
    try:
        yield up
    finally:
        up.close()
        lt.stop()


class RawClient:
    """A blocking client socket with a read buffer; `timeout` bounds every read."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            if not self._fill():
                raise EOFError(f"connection closed before {marker!r}; got {self.buf[:200]!r}")
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError(f"connection closed after {len(self.buf)} of {n} bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    def read_head(self) -> tuple[int, str, str, list[tuple[str, str]], bytes]:
        head = self.read_until(b"\r\n\r\n")
        lines = head[:-4].decode("latin-1").split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
        return int(status), (reason[0] if reason else ""), version, headers, head

    def read_response(self, method: str = "GET") -> Response:
        interim = []
        while True:
            status, reason, version, headers, head = self.read_head()
            if 100 <= status < 200 and status != 101:
                interim.append(status)
                continue
            break
        resp = Response(status, reason, version, headers, b"", head, interim=interim)
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if method == "HEAD" or status in (101, 204, 304):
            return resp
        if te is not None:
            assert te.lower() == "chunked", te
            resp.chunked = True
            body = bytearray()
            while True:
                line = self.read_until(b"\r\n")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.read_until(b"\r\n") != b"\r\n":
                        pass
                    break
                chunk = self.read_exactly(size + 2)
                assert chunk[-2:] == b"\r\n", chunk[-10:]
                body += chunk[:-2]
            resp.body = bytes(body)
        elif cl is not None:
            resp.body = self.read_exactly(int(cl))
        else:
            resp.body = self.read_to_eof()
        return resp

    def request(self, method: str = "GET", target: str = "/", headers: Headers | None = None,
                body: bytes = b"", host: str = "example.test") -> Response:
        self.send(build_request(method, target, headers, body, host))
        return self.read_response(method)

    def closed_by_peer(self, timeout: float = 3.0) -> bool:
        """True when the server closes the connection (EOF or RST) within `timeout`, with
        nothing but `extra` bytes left; any data read is kept in `self.buf`."""
        self.sock.settimeout(timeout)
        try:
            while self._fill():
                pass
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()


def build_request(method: str = "GET", target: str = "/", headers: Headers | None = None,
                  body: bytes = b"", host: str | None = "example.test",
                  version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {target} {version}\r\n"]
    if host is not None:
        lines.append(f"Host: {host}\r\n")
    hdrs = list(headers or [])
    names = {n.lower() for n, _ in hdrs}
    if body and "content-length" not in names and "transfer-encoding" not in names:
        hdrs.append(("Content-Length", str(len(body))))
    for n, v in hdrs:
        lines.append(f"{n}: {v}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + body


def service_doc(url: str, routes: list[dict[str, Any]] | None = None, **svc: Any) -> dict[str, Any]:
    """A one-service declarative document."""
    return {
        "_format_version": "3.0",
        "services": [{"name": "svc", "url": url, **svc,
                      "routes": routes if routes is not None else [{"name": "r", "paths": ["/"]}]}],
    }
