"""The downstream side: one `DownstreamProtocol` per client connection, fed to httptools.

httptools (llhttp) is strict: it already rejects Content-Length together with
Transfer-Encoding, duplicate Content-Length, bad chunk sizes, obs-fold and bare CR/LF. This
class adds the size limits and turns every parser error into a 400 (414/431 for sizes) sent
on a connection that is then closed, so nothing after a malformed request is ever parsed.

Pipelining: requests are answered strictly in order. When a second request's head arrives
while one is being served it is queued and reading pauses until the queue drains.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

import httptools

from tollway.dataplane import local_reply
from tollway.dataplane.http import PAUSE_PIPELINE
from tollway.dataplane.proxy import Exchange

if TYPE_CHECKING:
    from tollway.dataplane.server import ServerState

MAX_URL = 8192  # nginx large_client_header_buffers: a request line over 8 KiB → 414
MAX_HEADER_LINE = 8192
MAX_HEADERS_TOTAL = 32768  # 4 × 8 KiB, as nginx's default large_client_header_buffers
MAX_HEADER_COUNT = 200
# The most a head (request line and headers) can be within the limits above, and what a
# connection may have fed httptools of one unfinished head: httptools keeps an unfinished
# header line itself (on_header comes at its end), so an endless line is stopped by this
# count, and a read that ended a request counts whole (its tail may begin the next head).
MAX_HEAD = MAX_URL + MAX_HEADERS_TOTAL + 4 * MAX_HEADER_COUNT + 1024
MAX_HEAD_FED = MAX_HEAD + (256 << 10)  # + one read (uvloop reads at most 256 KB)
WRITE_HIGH_WATER = 1 << 18



class RequestTooLarge(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


def check_headers(headers: list[tuple[bytes, bytes]]) -> None:
    """431 for a header line over MAX_HEADER_LINE, headers over MAX_HEADERS_TOTAL in all or
    more than MAX_HEADER_COUNT of them (name and value bytes, as nginx's buffers count)."""
    if len(headers) > MAX_HEADER_COUNT:
        raise RequestTooLarge(431)
    total = 0
    for name, value in headers:
        size = len(name) + len(value)
        if size > MAX_HEADER_LINE:
            raise RequestTooLarge(431)
        total += size
    if total > MAX_HEADERS_TOTAL:
        raise RequestTooLarge(431)


class DownstreamProtocol(asyncio.Protocol):
    def __init__(self, state: ServerState, port: int, scheme: str = "http") -> None:
        # global state
        self.state = state
        self.loop = state.loop
        self.port = port
        self.port_bytes = str(port).encode()
        self.scheme = scheme
        # per-connection state
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.client_ip = ""
        self.client_ip_bytes = b""
        self.client_port = 0
        self.trusted = False  # the peer is in trusted_ips: its X-Forwarded-* are believed
        self.scheme_bytes = scheme.encode()
        self.pipeline: deque[Exchange] = deque()
        self.current: Exchange | None = None  # the exchange whose response is being sent
        self.pauses = 0
        self.write_paused = False
        self.closed = False
        self.upgraded = False
        self.eof = False  # the client half-closed: close once the queued responses are sent
        self.last_active = 0.0
        self.requests = 0
        # per-request parse state
        self.parsing: Exchange | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        # bytes fed to the parser since the last complete head, at most (see MAX_HEAD)
        self.head_bytes = 0
        self.read_len = 0  # the read being fed
        # Upstream request header lines that depend only on the connection (§2.8), built
        # once per connection by ServerState.connection_opened for untrusted peers.
        self.static_forwarded = b""
        self.sni: str | None = None  # the TLS server name the client asked for

    # -- asyncio callbacks ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # Larger than asyncio's 64 KiB default: a streamed body then pauses the upstream a
        # few times per MiB instead of dozens, while memory per connection stays bounded.
        transport.set_write_buffer_limits(WRITE_HIGH_WATER)  # type: ignore[attr-defined]
        if self.scheme == "https" and self._tls_handover(transport):
            return
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.client_ip, self.client_port = peer[0], peer[1]
        self.last_active = self.loop.time()
        self.state.connection_opened(self)

    def _tls_handover(self, transport: asyncio.BaseTransport) -> bool:
        """On a TLS listener (the handshake is done): note the server name, and give the
        connection to the HTTP/2 protocol if ALPN chose h2. True if handed over."""
        sslobj = transport.get_extra_info("ssl_object")
        if sslobj is None:
            return False
        self.sni = getattr(sslobj, "tollway_sni", None)
        if sslobj.selected_alpn_protocol() != "h2":
            return False
        from tollway.dataplane.h2 import H2Connection  # h2 is only imported when used

        h2 = H2Connection(self.state, self.port, self.scheme, self.sni)
        transport.set_protocol(h2)
        h2.connection_made(transport)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.connection_closed(self)
        ex = self.current
        if ex is not None:
            ex.downstream_lost()
        for queued in self.pipeline:
            queued.downstream_lost()
        self.pipeline.clear()

    def eof_received(self) -> bool | None:
        # A client may half-close after sending its last (pipelined) request; keep the
        # socket open for writing until those responses are sent, then close.
        self.eof = True
        ex = self.current
        if self.upgraded and ex is not None:
            ex.end_tunnel()  # WebSocket has no use for half-close: end both sides
            return None
        return True if (ex is not None or self.pipeline) else None

    def data_received(self, data: bytes) -> None:
        self.last_active = self.loop.time()  # also the start time of a request begun here
        if self.upgraded:
            if self.current is not None:
                self.current.on_downstream_tunnel_data(data)
            return
        parsing, requests = self.parsing, self.requests
        self.read_len = size = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.upgraded = True
            rest = data[upgrade.args[0]:]
            if rest and self.current is not None:
                self.current.on_downstream_tunnel_data(rest)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, RequestTooLarge):
                self.reject(cause.status)
            else:
                raise
        except httptools.HttpParserError:
            self.reject(400)
        else:
            if self.parsing is None:  # not in a request body: in a head, or between two
                if parsing is None and self.requests == requests:
                    # no head ended in this read: all of it is (the start of) a head
                    self.head_bytes += size
                    if self.head_bytes > MAX_HEAD_FED:
                        self.reject(431)
                else:
                    self.head_bytes = size

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.current is not None:
            self.current.downstream_write_paused(True)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.current is not None:
            self.current.downstream_write_paused(False)

    # -- httptools callbacks ----------------------------------------------------------------
    # There is no on_message_begin: the per-request parse state is reset in
    # on_headers_complete, which saves a callback per request.
    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > MAX_URL:
            raise RequestTooLarge(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        # (the limits are checked once the head is complete: memory is bounded meanwhile
        # by data_received's count, and most heads are too short to break them)
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        headers = self.headers
        # This head is at most the bytes fed since the last one plus this read: shorter
        # than one header line may be, it cannot break the byte limits.
        if (self.head_bytes + self.read_len > MAX_HEADER_LINE
                or len(headers) > MAX_HEADER_COUNT):
            check_headers(headers)
        p = self.parser
        # (the version: None, the exchange asks the parser only when keep-alive does not
        # tell; see Exchange.__init__)
        ex = Exchange(self, p.get_method(), self.url, headers, None, p.should_keep_alive(),
                      self.last_active)
        self.url = b""
        self.headers = []
        self.head_bytes = 0
        self.requests += 1
        self.parsing = ex
        if self.current is None:
            self.current = ex
            ex.start()
        else:
            self.pipeline.append(ex)
            self.pause(PAUSE_PIPELINE)

    def on_body(self, body: bytes) -> None:
        ex = self.parsing
        if ex is not None:
            ex.on_request_body(body)

    def on_message_complete(self) -> None:
        ex = self.parsing
        self.parsing = None
        if ex is not None:
            ex.on_request_end()

    # -- used by exchanges ------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        t = self.transport
        if t is not None and not self.closed:
            t.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        t = self.transport
        if t is not None and not self.closed:
            t.writelines(parts)

    def pause(self, reason: int) -> None:
        if not self.pauses and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self.pauses |= reason

    def resume(self, reason: int) -> None:
        if not self.pauses & reason:
            return
        self.pauses &= ~reason
        if not self.pauses and self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def exchange_done(self, ex: Exchange, keep_alive: bool) -> None:
        """The response of `ex` is fully written: close, or serve the next request."""
        self.last_active = self.loop.time()
        if ex is not self.current:
            return
        self.current = None
        if not keep_alive or self.state.draining or self.upgraded:
            self.close()
            return
        if self.pipeline:
            nxt = self.pipeline.popleft()
            self.current = nxt
            if not self.pipeline:
                self.resume(PAUSE_PIPELINE)
            nxt.start()
        elif self.eof:
            self.close()
        elif self.pauses:  # (most connections never pause: no call then)
            self.resume(PAUSE_PIPELINE)

    def reject(self, status: int) -> None:
        """A malformed or oversized request: answer nginx-style and close the connection.

        Responses already queued ahead of it are abandoned with the connection: after a
        framing error nothing on this connection can be trusted.
        """
        if self.closed or self.transport is None:
            return
        self.state.stats_rejected += 1
        ctype = local_reply.TEXT
        body = local_reply.render_body(local_reply.default_message(status),
                                       self.state.new_request_id(), ctype)
        self.transport.write(local_reply.build(
            status, ctype, body, date=self.state.date, extra=[local_reply.SERVER_LINE],
            keep_alive=False))
        self.close()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    def idle(self) -> bool:
        return self.current is None and self.parsing is None and not self.pipeline
