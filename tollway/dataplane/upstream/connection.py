"""One HTTP/1.1 connection to an upstream: an `asyncio.Protocol` fed to httptools.

The connection serves one exchange at a time (no upstream pipelining). It forwards what the
parser reports straight to its exchange, so response bytes go from the upstream socket to the
downstream socket without an intermediate queue; flow control pauses the other side instead.

States (httpcore's `HTTPConnectionState`):

    NEW ──attach──► ACTIVE ──response end, keep-alive──► IDLE ──attach──► ACTIVE …
                      │                                    │
                      └──error / close / timeout──► CLOSED ◄┘ (upstream closed it)
"""

from __future__ import annotations

import asyncio
from enum import IntEnum
from typing import TYPE_CHECKING

import httptools

from tollway.dataplane.upstream.health import TCP_FAILURE, TIMEOUT

if TYPE_CHECKING:
    from tollway.dataplane.proxy import Exchange
    from tollway.dataplane.upstream.balancer import Peer
    from tollway.dataplane.upstream.pool import Origin, Pool


class State(IntEnum):
    NEW = 0
    ACTIVE = 1
    IDLE = 2
    CLOSED = 3


class Failure(IntEnum):
    """Why an upstream attempt failed; decides 502 vs 504 and whether to retry."""

    CONNECT = 1  # refused / unreachable: nothing reached the upstream
    CONNECT_TIMEOUT = 2
    RESET = 3  # closed or reset before a complete response
    TIMEOUT = 4  # write or read timeout after the request (part) was sent
    INVALID = 5  # unparsable response


WRITE_HIGH_WATER = 1 << 18  # see DownstreamProtocol: fewer pause/resume cycles per MiB
# The largest response head taken from an upstream: httptools keeps an unfinished header
# line itself, so a broken upstream sending one without end would otherwise grow the worker
# until the read timeout. Past it: 502, as nginx's "upstream sent too big header". Kong
# keeps nginx's proxy_buffer_size (one page, 4k/8k) unless configured; 160k is what
# deployments with big cookies set it to (docs/differences-from-kong.md).
MAX_RESPONSE_HEAD = 160 << 10

# No body follows these statuses, whatever the headers say (RFC 9112 §6.3).
NO_BODY_STATUSES = frozenset({204, 304})


class UpstreamConnection(asyncio.Protocol):
    def __init__(self, pool: Pool, origin: Origin) -> None:
        # global / per-connection state
        self.pool = pool
        self.loop = pool.loop
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.state = State.NEW
        self.requests = 0
        self.idle_since = 0.0
        self.parser = httptools.HttpResponseParser(self)
        self.write_paused = False
        self.read_paused = False
        self.paused_since = 0.0
        # per-exchange state
        self.exchange: Exchange | None = None
        self.last_io = 0.0
        self.timeout = 60.0
        self.head_only = False  # response to HEAD: no body whatever Content-Length says
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_bytes = 0  # of the response head not complete yet (MAX_RESPONSE_HEAD)
        self.response_started = False
        self.close_delimited = False
        self.tunnel = False
        # The balanced address this try went to (set by Exchange._attach): the connection
        # reports the outcome (status, failure, time) and ends the attempt (load counts).
        self.peer: Peer | None = None
        self.peer_reported = False

    # -- asyncio callbacks ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(WRITE_HIGH_WATER)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        prev = self.state
        self.state = State.CLOSED
        self._cancel_timer()
        if prev == State.IDLE:
            self.pool.discard(self)
            return
        ex = self.exchange
        if ex is None:
            self._drop_peer(None)
            return
        self.exchange = None
        if self.tunnel:
            self._drop_peer(None)
            ex.on_tunnel_closed()
        elif self.close_delimited and self.response_started:
            # No Content-Length and not chunked: the close is the end of the body.
            self._drop_peer(None)
            ex.on_response_end()
        else:
            self._drop_peer(TCP_FAILURE)
            ex.on_upstream_error(Failure.RESET, self.response_started)

    def data_received(self, data: bytes) -> None:
        self.last_io = self.loop.time()
        if self.tunnel:
            ex = self.exchange
            if ex is not None:
                ex.on_tunnel_data(data)
            return
        try:
            self.parser.feed_data(data)
            ex = self.exchange
            if ex is not None:
                if ex.held is not None:
                    ex.flush_held()  # the head's body is not in this read: send the head now
                elif not self.response_started:  # the head is not complete yet
                    self.head_bytes += len(data)
                    if self.head_bytes > MAX_RESPONSE_HEAD:
                        self._fail(Failure.INVALID)
        except httptools.HttpParserUpgrade as upgrade:
            rest = data[upgrade.args[0]:]
            self.tunnel = True
            if rest and self.exchange is not None:
                self.exchange.on_tunnel_data(rest)
        except httptools.HttpParserError:
            self._fail(Failure.INVALID)

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost decides what the close meant

    def pause_writing(self) -> None:
        self.write_paused = True
        self.paused_since = self.loop.time()
        if self.exchange is not None:
            self.exchange.upstream_write_paused(True)

    def resume_writing(self) -> None:
        self.write_paused = False
        self.last_io = self.loop.time()
        if self.exchange is not None:
            self.exchange.upstream_write_paused(False)

    # -- httptools callbacks ----------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        self.head_bytes = 0
        if 100 <= status < 200 and status != 101:
            # Interim responses (100 Continue, 103 Early Hints) are not forwarded: tollway
            # answers Expect itself, and the final response follows on this connection.
            self.headers = []
            return
        ex = self.exchange
        if ex is None:
            return
        self.status = status
        self.response_started = True
        peer = self.peer
        if peer is not None and not self.peer_reported:
            self.peer_reported = True
            peer.outcome(status, self.loop.time() - ex.t_upstream)
        headers, self.headers = self.headers, []
        no_body = self.head_only or status in NO_BODY_STATUSES
        self.close_delimited = not ex.on_response_head(status, headers, no_body)
        if self.head_only and self.exchange is not None:
            # llhttp would wait for the body that Content-Length announces; a HEAD response
            # has none, so end it here and give this connection a fresh parser.
            self.parser = httptools.HttpResponseParser(self)
            self._finish(_keep_alive(headers))

    def on_body(self, body: bytes) -> None:
        ex = self.exchange
        if ex is not None:
            ex.on_response_body(body)

    def on_message_complete(self) -> None:
        if not self.response_started or self.tunnel or self.exchange is None:
            return
        if self.parser.should_upgrade():
            return  # 101: the tunnel takes over in data_received
        self._finish(self.parser.should_keep_alive())

    # -- used by the exchange ---------------------------------------------------------------
    def reusable(self) -> bool:
        t = self.transport
        return self.state != State.CLOSED and t is not None and not t.is_closing()

    def attach(self, ex: Exchange, head: bytes, timeout: float, head_only: bool,
               whole: bool = False) -> None:
        """Start an exchange: send the request head. The body follows through `send`.
        `whole`: the head is the whole request (nothing follows it on this connection
        before the response), so it may leave with the loop iteration's other heads
        (Pool.write_soon)."""
        self.state = State.ACTIVE
        self.exchange = ex
        self.requests += 1
        self.head_only = head_only
        self.response_started = False
        self.close_delimited = False
        self.status = 0
        self.timeout = timeout
        if self.read_paused:  # the last client of this connection was slow
            self.pause_reading(False)
        self.last_io = self.loop.time()
        pool = self.pool
        pool.active.add(self)
        if whole:
            pool.write_soon(self.transport, head)  # type: ignore[arg-type]
        else:
            self.transport.write(head)  # type: ignore[union-attr]

    def send(self, data: bytes) -> None:
        t = self.transport
        if t is not None:
            self.last_io = self.loop.time()
            t.write(data)

    def send_many(self, parts: list[bytes]) -> None:
        t = self.transport
        if t is not None:
            self.last_io = self.loop.time()
            t.writelines(parts)

    def pause_reading(self, paused: bool) -> None:
        """Backpressure from a slow client. While paused the read timeout does not run:
        the upstream is not the one being slow."""
        t = self.transport
        if t is None or t.is_closing():
            return
        self.read_paused = paused
        if paused:
            t.pause_reading()
        else:
            self.last_io = self.loop.time()
            t.resume_reading()

    def set_timeout(self, timeout: float) -> None:
        """Switch from the write timeout to the read timeout once the request is sent."""
        self.timeout = timeout

    def detach(self) -> None:
        """The exchange gave up (client went away): this connection's state is unknown."""
        self.exchange = None
        self._drop_peer(None)
        self.close()

    def close(self) -> None:
        self._cancel_timer()
        self.state = State.CLOSED
        if self.transport is not None:
            self.transport.close()

    # -- internals --------------------------------------------------------------------------
    def _drop_peer(self, failure: str | None) -> None:
        """End the balanced attempt; `failure` (health.TCP_FAILURE / TIMEOUT) is reported
        when no status was."""
        peer = self.peer
        if peer is None:
            return
        self.peer = None
        if failure is not None and not self.peer_reported:
            peer.failed(failure)
        self.peer_reported = False
        peer.release()

    def _finish(self, keep_alive: bool) -> None:
        ex = self.exchange
        self.exchange = None
        # _cancel_timer() and _drop_peer(None) without their calls: once per response
        self.pool.active.discard(self)
        if self.peer is not None:
            self._drop_peer(None)
        if keep_alive and ex is not None and ex.request_sent:
            self.state = State.IDLE
            if self.write_paused:  # never pool a connection with unsent request bytes
                self.close()
            else:
                self.pool.release(self)
        else:
            self.close()
        if ex is not None:
            ex.on_response_end()

    def _fail(self, kind: Failure) -> None:
        ex = self.exchange
        self.exchange = None
        started = self.response_started
        self._drop_peer(TIMEOUT if kind == Failure.TIMEOUT else TCP_FAILURE)
        self.close()
        if ex is not None:
            ex.on_upstream_error(kind, started)

    def _cancel_timer(self) -> None:
        self.pool.active.discard(self)

    def check_timeout(self, now: float) -> None:
        """Called by the pool's timeout sweep. I/O only stamps `last_io`, so a fast exchange
        costs two set operations instead of a timer allocation and cancel."""
        if self.exchange is None or self.tunnel or self.read_paused:
            return  # tunnels have no read timeout; a slow client is not a slow upstream
        since = self.paused_since if self.write_paused else self.last_io
        if now - since >= self.timeout:
            self._fail(Failure.TIMEOUT)


def _keep_alive(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"connection" and b"close" in value.lower():
            return False
    return True
