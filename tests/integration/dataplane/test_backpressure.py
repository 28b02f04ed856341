"""Backpressure both ways, and the write timeout, with an in-process gateway."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

from dataplane_helpers import build_request, raw, service_doc

MIB = 1 << 20


def wait_stable(read, settle: float = 0.4, timeout: float = 10.0) -> int:
    """Poll `read()` until it stops changing for `settle` seconds; return the value."""
    deadline = time.monotonic() + timeout
    last, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= settle:
            return now
    raise AssertionError("value never settled")


def test_download_backpressure_stalls_upstream(make_upstream, make_gateway, make_client):
    """A client that does not read stalls the upstream's writes: the gateway does not
    buffer the response."""
    total = 256 * MIB
    sent = {"n": 0}

    @raw
    async def big(conn, _):
        await conn.reader.readuntil(b"\r\n\r\n")
        conn.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        block = b"z" * MIB
        while sent["n"] < total:
            conn.writer.write(block)
            await conn.writer.drain()
            sent["n"] += MIB

    up = make_upstream(big)
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port, timeout=30)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
    c.send(build_request("GET", "/big"))
    stalled_at = wait_stable(lambda: sent["n"])
    assert stalled_at < 64 * MIB, f"upstream wrote {stalled_at >> 20} MiB to a non-reading client"
    status, *_ = c.read_head()
    assert status == 200
    got = 0
    while got < total:
        chunk = c.read_exactly(min(MIB, total - got)) if c.buf else c.sock.recv(MIB)
        if not chunk:
            break
        got += len(chunk)
    assert got == total


def test_upload_backpressure_stalls_client(make_upstream, make_gateway):
    """An upstream that does not read the request body stalls the client's sending: the
    gateway does not buffer the request body."""
    release = threading.Event()
    total = 256 * MIB
    received = {"n": 0}

    @raw
    async def lazy(conn, _):
        await conn.reader.readuntil(b"\r\n\r\n")
        while not release.is_set():
            await asyncio.sleep(0.02)
        while received["n"] < total:
            data = await conn.reader.read(MIB)
            if not data:
                return
            received["n"] += len(data)
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    up = make_upstream(lazy)
    gw = make_gateway(service_doc(up.url, read_timeout=30000, write_timeout=30000))
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
    s.sendall(build_request("PUT", "/up", [("Content-Length", str(total))]))
    s.setblocking(False)
    sent = 0
    block = b"u" * (64 * 1024)

    def push() -> int:
        nonlocal sent
        while sent < total:
            try:
                sent += s.send(block[: min(len(block), total - sent)])
            except BlockingIOError:
                break
        return sent

    stalled_at = wait_stable(push)
    try:
        assert stalled_at < 64 * MIB, f"client could push {stalled_at >> 20} MiB into the gateway"
        release.set()
        s.setblocking(True)
        s.settimeout(30)
        while sent < total:
            sent += s.send(block[: min(len(block), total - sent)])
        resp = b""
        while b"\r\n\r\nok" not in resp:
            data = s.recv(65536)
            if not data:
                break
            resp += data
        assert resp.startswith(b"HTTP/1.1 200"), resp[:200]
        assert received["n"] == total
    finally:
        release.set()
        s.close()


def test_write_timeout_gives_504(make_upstream, make_gateway):
    """An upstream that stops reading the request body: after write_timeout, 504."""
    @raw
    async def never_reads(conn, _):
        await conn.reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(3600)

    up = make_upstream(never_reads)
    gw = make_gateway(service_doc(up.url, retries=0, write_timeout=500, read_timeout=60000))
    total = 512 * MIB
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.sendall(build_request("PUT", "/wt", [("Content-Length", str(total))]))
    s.setblocking(False)
    block = b"w" * (64 * 1024)
    t0 = time.monotonic()
    resp = b""
    deadline = t0 + 10
    try:
        while time.monotonic() < deadline and b"\r\n\r\n" not in resp:
            try:
                s.send(block)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                pass
            try:
                data = s.recv(65536)
                if not data:
                    break
                resp += data
            except BlockingIOError:
                time.sleep(0.01)
            except ConnectionResetError:
                break
        elapsed = time.monotonic() - t0
        assert resp.startswith(b"HTTP/1.1 504 "), resp[:300]
        assert b"The upstream server is timing out" in resp
        # libuv's millisecond loop clock may fire the timer a little early by the wall clock
        assert 0.5 - 0.01 <= elapsed < 5
    finally:
        s.close()
