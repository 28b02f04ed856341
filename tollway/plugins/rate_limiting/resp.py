"""A pipelined Redis connection: what the redis policy needs and nothing more.

Why not redis-py's asyncio client: per call it checks a connection out of a pool (a
Condition and a coroutine chain), packs each argument in Python and parses through
several layers; the redis policy paid ~40 us of worker CPU a request for it on a slow VM,
more than the rest of the chain. Here a command is bytes the caller framed (the policy's
counter keys are framed once per identifier and second), it is written at once on the one
connection, and replies come back in order (Redis answers a connection's commands in the
order sent), parsed in C by hiredis and handed to the waiter queued with the command.

A waiter is called with the reply (hiredis's Python value) or with an exception instance:
`hiredis.ReplyError` for a Redis error reply, `ConnectionError` / `TimeoutError` when the
connection failed, closed or stopped answering; every waiter is called exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import hiredis

log = logging.getLogger("tollway.plugins.rate-limiting")
Waiter = Callable[[Any], None]


def settle(fut: asyncio.Future[Any], reply: Any) -> None:
    """A future from a reply: an exception instance is raised by the future (once: later
    replies for a settled future are ignored)."""
    if fut.done():
        return
    if isinstance(reply, Exception):
        fut.set_exception(reply)
    else:
        fut.set_result(reply)


def frame(arg: bytes) -> bytes:
    """One bulk string of a command, ready to be joined into it."""
    return b"$%d\r\n%s\r\n" % (len(arg), arg)


def command(*args: bytes) -> bytes:
    """A whole command from its words."""
    return b"*%d\r\n%s" % (len(args), b"".join(map(frame, args)))


class Client:
    """One connection to one Redis server, opened on the first command and again on the
    first command after it closed. Commands sent while it connects are written once it is
    up, behind AUTH and SELECT."""

    def __init__(self, host: str, port: int, *, db: int = 0, username: str | None = None,
                 password: str | None = None, ssl_context: ssl.SSLContext | None = None,
                 server_hostname: str | None = None, connect_timeout: float | None = 2.0,
                 io_timeout: float | None = 2.0) -> None:
        self.host, self.port = host, port
        self.ssl_context, self.server_hostname = ssl_context, server_hostname
        self.connect_timeout, self.io_timeout = connect_timeout, io_timeout
        hello: list[bytes] = []
        if password:
            hello.append(command(b"AUTH", *([username.encode()] if username else []),
                                 password.encode()))
        if db:
            hello.append(command(b"SELECT", str(db).encode()))
        self.hello = hello
        self.proto: _Protocol | None = None
        self.queued: list[tuple[bytes, Waiter]] = []  # sent while connecting
        self.connecting: asyncio.Task[None] | None = None

    def send(self, cmd: bytes, waiter: Waiter) -> None:
        """Write one framed command and queue `waiter` for its reply."""
        proto = self.proto
        if proto is not None:
            proto.send(cmd, waiter)
            return
        self.queued.append((cmd, waiter))
        if self.connecting is None:
            self.connecting = asyncio.get_running_loop().create_task(self._connect())

    def call_many(self, commands: list[bytes]) -> asyncio.Future[list[Any]]:
        """Several commands pipelined; the future's result is their replies in order (an
        error reply is left in the list as a hiredis.ReplyError; a failed connection
        raises)."""
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        replies: list[Any] = []
        last = len(commands) - 1

        def one(reply: Any) -> None:
            if fut.done():
                return
            if isinstance(reply, (ConnectionError, TimeoutError)):
                fut.set_exception(reply)
                return
            replies.append(reply)
            if len(replies) > last:
                fut.set_result(replies)

        for cmd in commands:
            self.send(cmd, one)
        if last < 0:
            fut.set_result(replies)
        return fut

    def call(self, *args: bytes) -> asyncio.Future[Any]:
        """One command from its words; the future's result is the reply (an error reply
        raises hiredis.ReplyError)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.send(command(*args), partial(settle, fut))
        return fut

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            try:
                _, proto = await asyncio.wait_for(loop.create_connection(
                    lambda: _Protocol(self, loop), self.host, self.port,
                    ssl=self.ssl_context,
                    server_hostname=self.server_hostname if self.ssl_context else None),
                    self.connect_timeout)
            except asyncio.CancelledError:
                self._fail_queued(ConnectionError(
                    f"redis {self.host}:{self.port}: connecting was cancelled"))
                raise
            except TimeoutError:
                self._fail_queued(TimeoutError(
                    f"redis {self.host}:{self.port}: connect timed out"))
                return
            except (OSError, ssl.SSLError) as exc:
                self._fail_queued(ConnectionError(
                    f"redis {self.host}:{self.port}: {exc.strerror or exc}"
                    if isinstance(exc, OSError) else f"redis {self.host}:{self.port}: {exc}"))
                return
        finally:
            self.connecting = None
        self.proto = proto
        for hello in self.hello:
            proto.send(hello, proto.hello_reply)
        queued, self.queued = self.queued, []
        for cmd, waiter in queued:
            proto.send(cmd, waiter)

    def _fail_queued(self, exc: Exception) -> None:
        queued, self.queued = self.queued, []
        for _, waiter in queued:
            waiter(exc)

    def lost(self, proto: _Protocol) -> None:
        if self.proto is proto:
            self.proto = None

    def close(self) -> None:
        if self.proto is not None:
            self.proto.abort(ConnectionError(f"redis {self.host}:{self.port}: client closed"))


class _Protocol(asyncio.Protocol):
    """The open connection: written commands' waiters in order, the timeout on the oldest."""

    def __init__(self, client: Client, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop
        self.reader = hiredis.Reader()
        # (time written, waiter) for each reply still to come, oldest first
        self.waiters: deque[tuple[float, Waiter]] = deque()
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # small pipelined writes must not wait for the previous one's ACK (Nagle)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, cmd: bytes, waiter: Waiter) -> None:
        if self.closed or self.transport is None:
            waiter(ConnectionError(f"redis {self.client.host}:{self.client.port}: "
                                   "connection closed"))
            return
        self.transport.write(cmd)
        self.waiters.append((self.loop.time(), waiter))
        if self.timer is None and self.client.io_timeout:
            self.timer = self.loop.call_later(self.client.io_timeout, self._check_timeout)

    def hello_reply(self, reply: Any) -> None:
        if isinstance(reply, Exception):
            # AUTH or SELECT refused: the commands behind it fail too (NOAUTH and the like),
            # and the next command tries a new connection.
            self.abort(ConnectionError(f"redis {self.client.host}:{self.client.port}: "
                                       f"{reply}"))

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        waiters = self.waiters
        try:
            while (reply := reader.gets()) is not False:
                if not waiters:
                    raise hiredis.ProtocolError("a reply nothing was waiting for")
                try:
                    waiters.popleft()[1](reply)
                except Exception:  # a waiter's bug must not desynchronise the replies
                    log.exception("redis reply handler failed")
        except hiredis.ProtocolError as exc:
            self.abort(ConnectionError(f"redis {self.client.host}:{self.client.port}: "
                                       f"protocol error: {exc}"))

    def _check_timeout(self) -> None:
        self.timer = None
        waiters = self.waiters
        if not waiters:
            return
        timeout = self.client.io_timeout
        assert timeout
        due = waiters[0][0] + timeout
        now = self.loop.time()
        if now >= due:
            self.abort(TimeoutError(f"redis {self.client.host}:{self.client.port}: no reply "
                                    f"in {timeout:g} s"))
        else:
            self.timer = self.loop.call_later(due - now, self._check_timeout)

    def abort(self, exc: Exception) -> None:
        """Close, and fail every reply still to come with `exc`."""
        if not self.closed:
            self.closed = True
            self.client.lost(self)
            if self.transport is not None:
                self.transport.abort()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        waiters, self.waiters = self.waiters, deque()
        for _, waiter in waiters:
            waiter(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.abort(ConnectionError(f"redis {self.client.host}:{self.client.port}: "
                                   f"connection lost{f': {exc}' if exc else ''}"))
