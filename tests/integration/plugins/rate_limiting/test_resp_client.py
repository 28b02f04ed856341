"""The redis policy's pipelined connection (`resp.Client`) and its script batches, against
real redis-server processes started here (AUTH, SELECT, TLS, SCRIPT FLUSH, a kill) and
against raw sockets for what a healthy Redis never does (silence, garbage)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hiredis
import pytest
import redis
from node_support import free_port, wait_until
from rl_support import kill_all, redis_server

from tollway.plugins.rate_limiting.redis_policy import (
    BATCH_MAX,
    Backend,
    args_frame,
    client_for,
    keys_frame,
)
from tollway.plugins.rate_limiting.resp import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tls"))

from tls_certs import CA

StartRedis = Callable[..., int]


def _need_redis_server() -> None:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and redis-server is not on PATH")
        pytest.skip("redis-server not on PATH (Debian package redis-server)")


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[StartRedis]:
    """Starts a throwaway redis-server with extra arguments; returns its port."""
    _need_redis_server()
    procs: list[subprocess.Popen[bytes]] = []

    def start(*extra: str, port: int | None = None, tls: bool = False,
              password: str | None = None) -> int:
        port = port or free_port()
        p = redis_server(tmp_path, port, *extra, tls=tls)
        procs.append(p)
        if tls:
            wait_until(lambda: _accepts(port), 10, what="redis-server (TLS)")
        else:
            wait_until(lambda: _ping(port, password), 10, what="redis-server")
        return port

    start.procs = procs  # type: ignore[attr-defined]
    yield start
    kill_all(procs)


def _ping(port: int, password: str | None = None) -> bool:
    try:
        return bool(redis.Redis(port=port, password=password, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_commands_pipelined_in_order_and_error_replies(start_redis: StartRedis) -> None:
    port = start_redis()

    async def go() -> None:
        c = Client("127.0.0.1", port)
        futs = [c.call(b"INCR", b"n") for _ in range(500)]  # one tick: one connect, then all
        assert await asyncio.gather(*futs) == list(range(1, 501))
        assert await c.call(b"SET", b"s", b"v") == b"OK"
        with pytest.raises(hiredis.ReplyError, match="WRONGTYPE"):
            await c.call(b"LPUSH", b"s", b"x")
        # the connection goes on after an error reply
        assert await c.call(b"GET", b"s") == b"v"
        c.close()

    run(go())


def test_call_many_keeps_error_replies_in_place(start_redis: StartRedis) -> None:
    port = start_redis()

    async def go() -> None:
        c = Client("127.0.0.1", port)
        await c.call(b"SET", b"s", b"v")
        replies = await c.call_many([b"*2\r\n$3\r\nGET\r\n$1\r\ns\r\n",
                                     b"*2\r\n$4\r\nINCR\r\n$1\r\ns\r\n",
                                     b"*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n"])
        assert replies[0] == b"v"
        assert isinstance(replies[1], hiredis.ReplyError)
        assert "not an integer" in str(replies[1])
        assert replies[2] == 1
        c.close()

    run(go())


def test_auth_with_username_and_select(start_redis: StartRedis) -> None:
    port = start_redis("--requirepass", "s3cret", password="s3cret")
    direct = redis.Redis(port=port, password="s3cret", db=5)

    async def go() -> None:
        ok = Client("127.0.0.1", port, username="default", password="s3cret", db=5)
        assert await ok.call(b"SET", b"where", b"db5") == b"OK"
        ok.close()
        wrong = Client("127.0.0.1", port, password="nope")
        with pytest.raises(ConnectionError, match=r"WRONGPASS|invalid password"):
            await wrong.call(b"GET", b"where")
        # and the next command opens a new connection (refused again, not stuck)
        with pytest.raises(ConnectionError):
            await wrong.call(b"GET", b"where")
        none = Client("127.0.0.1", port)
        with pytest.raises(hiredis.ReplyError, match="NOAUTH"):
            await none.call(b"GET", b"where")
        none.close()

    run(go())
    assert direct.get("where") == b"db5"
    assert redis.Redis(port=port, password="s3cret").get("where") is None
    direct.close()


def test_tls_with_and_without_verification(start_redis: StartRedis, tmp_path: Path) -> None:
    ca = CA()
    cert, key = ca.issue("redis.test", ["redis.test"]).write(tmp_path, "redis")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(ca.pem)
    port = start_redis("--tls-cert-file", cert, "--tls-key-file", key,
                       "--tls-ca-cert-file", str(ca_file), "--tls-auth-clients", "no", tls=True)
    base = {"port": port, "database": 0, "timeout": 2000, "ssl": True}

    async def go() -> None:
        plain = client_for({**base, "ssl_verify": False}, "127.0.0.1")
        assert await plain.call(b"PING") == b"PONG"
        plain.close()
        # verified against the system's CAs: this test CA is not one of them
        strict = client_for({**base, "ssl_verify": True, "server_name": "redis.test"},
                            "127.0.0.1")
        with pytest.raises(ConnectionError, match="certificate"):
            await strict.call(b"PING")
        # no TLS against a TLS port: the handshake bytes are not RESP
        bare = Client("127.0.0.1", port, io_timeout=1)
        with pytest.raises((ConnectionError, TimeoutError)):
            await bare.call(b"PING")

    run(go())


def test_silent_server_times_out_and_garbage_closes() -> None:
    """A listener that accepts and never answers; then one that answers with non-RESP."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    garbage = socket.socket()
    garbage.bind(("127.0.0.1", 0))
    garbage.listen(8)
    held: list[socket.socket] = []

    def answer_garbage() -> None:
        conn, _ = garbage.accept()
        held.append(conn)
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    t = threading.Thread(target=answer_garbage, daemon=True)
    t.start()

    async def go() -> None:
        loop = asyncio.get_running_loop()
        c = Client("127.0.0.1", silent.getsockname()[1], io_timeout=0.3)
        t0 = loop.time()
        results = await asyncio.gather(c.call(b"PING"), c.call(b"PING"),
                                       return_exceptions=True)
        assert all(isinstance(r, TimeoutError) for r in results), results
        assert "no reply in 0.3 s" in str(results[0])
        assert 0.25 <= loop.time() - t0 < 2
        g = Client("127.0.0.1", garbage.getsockname()[1], io_timeout=5)
        with pytest.raises(ConnectionError, match="protocol error"):
            await g.call(b"PING")

    try:
        run(go())
    finally:
        silent.close()
        garbage.close()
        for s in held:
            s.close()


def test_refused_and_killed_then_back(start_redis: StartRedis) -> None:
    port = free_port()

    async def go() -> None:
        c = Client("127.0.0.1", port, io_timeout=2)
        with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
            await c.call(b"PING")
        start_redis(port=port)
        assert await c.call(b"PING") == b"PONG"
        for p in start_redis.procs:  # type: ignore[attr-defined]
            p.kill()
            p.wait(5)
        with pytest.raises(ConnectionError):
            await c.call(b"PING")
        start_redis(port=port)
        assert await c.call(b"PING") == b"PONG"
        c.close()

    run(go())


def _backend(port: int) -> Backend:
    return Backend({"port": port, "database": 0, "timeout": 2000}, "127.0.0.1")


def test_batches_count_exactly_across_noscript_and_batch_limit(start_redis: StartRedis) -> None:
    """More than BATCH_MAX requests in one tick, twice, with the script flushed from the
    server in between: every request gets its own usage, none counted twice."""
    port = start_redis()
    direct = redis.Redis(port=port)
    key = f"rl-{uuid.uuid4().hex}"
    n = 2 * BATCH_MAX + 7

    async def go() -> None:
        b = _backend(port)
        first = await asyncio.gather(*(b.incr([key + ":s", key + ":m"], [1000, 60])
                                       for _ in range(n)))
        assert sorted(u[0] for u in first) == list(range(n))
        assert sorted(u[1] for u in first) == list(range(n))
        assert direct.script_exists(_sha())[0]
        direct.script_flush()
        second = await asyncio.gather(*(b.incr([key + ":s"], [1000]) for _ in range(n)))
        assert sorted(u[0] for u in second) == list(range(n, 2 * n))

    run(go())
    assert int(direct.get(key + ":s") or 0) == 2 * n
    assert int(direct.get(key + ":m") or 0) == n
    assert 990 < direct.ttl(key + ":s") <= 1000 and 50 < direct.ttl(key + ":m") <= 60
    direct.close()


def _sha() -> str:
    from tollway.plugins.rate_limiting.redis_policy import SCRIPT_SHA
    return SCRIPT_SHA.decode()


def test_sinks_of_a_failed_batch_all_get_the_error() -> None:
    port = free_port()  # nothing listens
    got: list[Any] = []

    async def go() -> None:
        b = _backend(port)
        for i in range(3):
            b.add(keys_frame([f"k{i}"]), 1, args_frame([60]), lambda ctx, u: got.append((ctx, u)),
                  i)
        while len(got) < 3:
            await asyncio.sleep(0.01)

    run(go())
    assert [ctx for ctx, _ in got] == [0, 1, 2]
    assert all(isinstance(u, ConnectionError) for _, u in got)


def test_a_failing_waiter_does_not_shift_the_replies(start_redis: StartRedis,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    port = start_redis()

    def broken(reply: Any) -> None:
        raise RuntimeError("handler bug")

    async def go() -> None:
        c = Client("127.0.0.1", port)
        first = c.call(b"SET", b"a", b"1")
        c.send(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n", broken)
        after = c.call(b"INCR", b"a")
        assert await first == b"OK"
        assert await after == 2  # its own reply, not the GET's
        c.close()

    run(go())
    assert any("redis reply handler failed" in r.getMessage() for r in caplog.records)


def test_a_failing_sink_does_not_strand_the_rest_of_its_batch(
        start_redis: StartRedis, caplog: pytest.LogCaptureFixture) -> None:
    port = start_redis()
    got: list[Any] = []

    def broken(ctx: Any, usages: Any) -> None:
        raise RuntimeError("sink bug")

    async def go() -> None:
        b = _backend(port)
        b.add(keys_frame(["s1"]), 1, args_frame([60]), broken, None)
        b.add(keys_frame(["s1"]), 1, args_frame([60]), lambda ctx, u: got.append(u), None)
        while not got:
            await asyncio.sleep(0.01)

    run(go())
    assert got == [[1]]  # the second request's own count, after the first's
    assert any("count was not applied" in r.getMessage() for r in caplog.records)
