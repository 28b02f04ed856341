"""HTTP/2 on the TLS listener (ALPN `h2`), with the `h2` library doing the framing.

    TLS transport ── H2Connection (asyncio.Protocol, h2.connection.H2Connection)
                        ├── H2Stream ── Exchange      (one per request stream)
                        └── H2Stream ── Exchange

An `Exchange` (proxy.py) talks to its downstream through a small interface — `write`,
`writelines`, `pause`, `resume`, `exchange_done`, the peer's address and trust, the scheme —
and writes HTTP/1.x bytes. `H2Stream` implements that interface for one stream: the
exchange is created with version "2.0", so it never chunk-frames a body (an HTTP/1.0
client gets the body as is); the stream parses the response head it writes into an h2
HEADERS frame (hop-by-hop headers dropped, names lower-cased) and sends everything after it
as DATA frames. The stream ends when the exchange says it is done.

Flow control both ways:
* request bodies: received DATA is acknowledged (window update) only while the exchange is
  not paused (`pause`/`resume`, the same reasons as on HTTP/1.1), so a client cannot push
  more than the stream window while the upstream is slow;
* responses: DATA is sent within the stream's and the connection's send windows; the rest
  waits in the stream's buffer, and above WRITE_HIGH_WATER the exchange pauses reading from
  its upstream until window updates drain it. A full TLS write buffer pauses every stream.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from h2.config import H2Configuration
from h2.connection import H2Connection as H2State
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes

from tollway.dataplane.proxy import Exchange

if TYPE_CHECKING:
    from tollway.dataplane.server import ServerState

MAX_CONCURRENT_STREAMS = 128  # nginx http2_max_concurrent_streams
STREAM_WINDOW = 1 << 18  # request body a client may send ahead of the upstream, per stream
CONNECTION_WINDOW = 1 << 24
WRITE_HIGH_WATER = 1 << 18
MAX_HEADER_LIST = 32768  # the HTTP/1.1 side's MAX_HEADERS_TOTAL

# Response headers that mean nothing (or are forbidden) in HTTP/2.
DROPPED = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                     b"upgrade", b"te", b"trailer"))


class _StreamTransport:
    """What an Exchange (or a plugin) reaches through `proto.transport`: `abort` resets the
    stream, `get_extra_info` is the TLS connection's."""

    __slots__ = ("stream",)

    def __init__(self, stream: H2Stream) -> None:
        self.stream = stream

    def abort(self) -> None:
        self.stream.reset()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        t = self.stream.conn.transport
        return t.get_extra_info(name, default) if t is not None else default


class H2Stream:
    """The downstream of one Exchange: one HTTP/2 request stream."""

    def __init__(self, conn: H2Connection, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.state = conn.state
        self.loop = conn.loop
        self.port = conn.port
        self.port_bytes = conn.port_bytes
        self.scheme = conn.scheme
        self.scheme_bytes = conn.scheme_bytes
        self.sni = conn.sni
        self.client_ip = conn.client_ip
        self.client_ip_bytes = conn.client_ip_bytes
        self.client_port = conn.client_port
        self.trusted = conn.trusted
        self.static_forwarded = conn.static_forwarded
        self.transport = _StreamTransport(self)
        self.requests = 1
        self.last_active = conn.last_active
        self.upgraded = False
        self.closed = False  # no more response bytes (the Exchange also sets it on abort)
        self.ended = False  # END_STREAM or RST_STREAM sent, or the client reset the stream
        self.exchange: Exchange | None = None
        self.head_buf = b""
        self.head_done = False
        self.pending: deque[bytes] = deque()
        self.pending_size = 0
        self.finished = False  # the exchange is done: end the stream once `pending` is sent
        self.pauses = 0
        self.unacked = 0  # received body bytes not yet acknowledged (reading is paused)
        self.write_paused = False

    # -- the interface Exchange uses --------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if self.head_done:
            if data:
                self._data(data)
            return
        buf = self.head_buf + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self.head_buf = buf
            return
        self.head_buf = b""
        lines = buf[:end].split(b"\r\n")
        rest = buf[end + 4:]
        status = int(lines[0][9:12])
        if status < 200:
            # `100 Continue` (the exchange answers Expect itself) and other interim heads:
            # an HTTP/2 client needs none of them.
            if rest:
                self.write(rest)
            return
        headers = [(b":status", b"%d" % status)]
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname not in DROPPED:
                headers.append((lname, value.strip()))
        self.head_done = True
        try:
            self.conn.h2.send_headers(self.stream_id, headers)
        except ProtocolError:
            self.reset()
            return
        if rest:
            self._data(rest)
        else:
            self.conn.flush()

    def writelines(self, parts: list[bytes]) -> None:
        self.write(b"".join(parts))

    def pause(self, reason: int) -> None:
        self.pauses |= reason

    def resume(self, reason: int) -> None:
        if not self.pauses & reason:
            return
        self.pauses &= ~reason
        if not self.pauses and self.unacked and not self.closed:
            n, self.unacked = self.unacked, 0
            self.conn.acknowledge(n, self.stream_id)

    def exchange_done(self, ex: Exchange, keep_alive: bool) -> None:
        # keep_alive is about the connection, which other streams share: ignored. The end of
        # the stream waits a loop iteration: `_finish(abort=True)` calls this and then
        # aborts, and an aborted response must be a reset, not a clean end.
        self.finished = True
        self.loop.call_soon(self._maybe_end)

    def close(self) -> None:
        self.reset()

    def idle(self) -> bool:
        return self.exchange is None or self.exchange.done

    # -- sending ----------------------------------------------------------------------------
    def _data(self, data: bytes) -> None:
        self.pending.append(data)
        self.pending_size += len(data)
        self.send_pending()

    def send_pending(self) -> None:
        """Send what the flow-control windows allow; pause or resume the upstream."""
        h2, sid = self.conn.h2, self.stream_id
        pending = self.pending
        try:
            while pending:
                window = min(h2.local_flow_control_window(sid), h2.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk = pending[0]
                if len(chunk) > window:
                    pending[0] = chunk[window:]
                    chunk = chunk[:window]
                else:
                    pending.popleft()
                self.pending_size -= len(chunk)
                h2.send_data(sid, chunk)
        except ProtocolError:
            self.reset()
            return
        self.conn.flush()
        self.update_write_pause()
        if self.finished and not pending:
            self._maybe_end()

    def update_write_pause(self) -> None:
        paused = self.conn.write_paused or self.pending_size > WRITE_HIGH_WATER
        if paused != self.write_paused:
            self.write_paused = paused
            ex = self.exchange
            if ex is not None and not ex.done:
                ex.downstream_write_paused(paused)

    def _maybe_end(self) -> None:
        if self.ended or self.pending:
            return
        if self.closed or not self.head_done:
            self.reset()  # an aborted exchange: the client must not take it as complete
            return
        self.closed = self.ended = True
        try:
            self.conn.h2.end_stream(self.stream_id)
        except ProtocolError:
            pass
        self.conn.stream_closed(self)
        self.conn.flush()

    def reset(self) -> None:
        if self.ended:
            return
        self.closed = self.ended = True
        try:
            self.conn.h2.reset_stream(self.stream_id, ErrorCodes.INTERNAL_ERROR)
        except ProtocolError:
            pass
        self.conn.stream_closed(self)
        self.conn.flush()
        self.lost()

    def lost(self) -> None:
        """The client reset the stream or the connection is gone."""
        self.closed = self.ended = True
        ex = self.exchange
        if ex is not None and not ex.done:
            ex.downstream_lost()


class H2Connection(asyncio.Protocol):
    """One HTTP/2 client connection. Registered in `ServerState.connections` with the
    attributes the 1 Hz tick and the drain look at (`current`, `pipeline`, `parsing`,
    `last_active`, `idle`, `close`)."""

    def __init__(self, state: ServerState, port: int, scheme: str, sni: str | None) -> None:
        self.state = state
        self.loop = state.loop
        self.port = port
        self.port_bytes = str(port).encode()
        self.scheme = scheme
        self.scheme_bytes = scheme.encode()
        self.sni = sni
        self.transport: asyncio.Transport | None = None
        self.client_ip = ""
        self.client_ip_bytes = b""
        self.client_port = 0
        self.trusted = False
        self.static_forwarded = b""
        self.streams: dict[int, H2Stream] = {}
        self.pipeline: deque[Any] = deque()  # always empty: streams are independent
        self.parsing: Any = None
        self.closed = False
        self.write_paused = False
        self.last_active = self.loop.time()
        self.h2 = H2State(H2Configuration(client_side=False, header_encoding=None))

    @property
    def current(self) -> Any:
        # The tick closes connections with no current exchange after the keep-alive timeout.
        return next(iter(self.streams.values()), None)

    def idle(self) -> bool:
        return not self.streams

    # -- asyncio callbacks ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.client_ip, self.client_port = peer[0], peer[1]
        self.state.connection_opened(self)  # type: ignore[arg-type]
        h2 = self.h2
        h2.initiate_connection()
        h2.update_settings({
            SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
            SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
            SettingCodes.ENABLE_PUSH: 0,
        })
        h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.connection_closed(self)  # type: ignore[arg-type]
        streams = list(self.streams.values())
        self.streams.clear()
        for stream in streams:
            stream.lost()

    def data_received(self, data: bytes) -> None:
        self.last_active = self.loop.time()
        try:
            events = self.h2.receive_data(data)
        except ProtocolError:
            self.flush()  # the GOAWAY h2 queued
            self.close()
            return
        for event in events:
            if isinstance(event, RequestReceived):
                self._request(event.stream_id, event.headers,
                              event.stream_ended is not None)
            elif isinstance(event, DataReceived):
                self._body(event.stream_id, event.data, event.flow_controlled_length)
            elif isinstance(event, StreamEnded):
                stream = self.streams.get(event.stream_id)
                if stream is not None and stream.exchange is not None:
                    stream.exchange.on_request_end()
            elif isinstance(event, WindowUpdated):
                targets = (list(self.streams.values()) if event.stream_id == 0
                           else [s for s in (self.streams.get(event.stream_id),) if s])
                for stream in targets:
                    if stream.pending:
                        stream.send_pending()
            elif isinstance(event, StreamReset):
                stream = self.streams.pop(event.stream_id, None)
                if stream is not None:
                    stream.lost()
            elif isinstance(event, ConnectionTerminated):
                self.close()
        self.flush()

    def pause_writing(self) -> None:
        self.write_paused = True
        for stream in list(self.streams.values()):
            stream.update_write_pause()

    def resume_writing(self) -> None:
        self.write_paused = False
        for stream in list(self.streams.values()):
            stream.update_write_pause()

    # -- requests ---------------------------------------------------------------------------
    def _request(self, stream_id: int, raw: Any, ended: bool) -> None:
        method = path = authority = b""
        headers: list[tuple[bytes, bytes]] = []
        cookies: list[bytes] = []
        has_length = False
        for name, value in raw:
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":authority":
                    authority = value
            elif name == b"cookie":
                cookies.append(value)  # HTTP/2 may split cookies; HTTP/1.1 wants one line
            elif name == b"host":
                if not authority:
                    authority = value
            else:
                if name == b"content-length":
                    has_length = True
                headers.append((name, value))
        if not path or method == b"CONNECT":
            self.h2.reset_stream(stream_id, ErrorCodes.PROTOCOL_ERROR)
            return
        if cookies:
            headers.append((b"cookie", b"; ".join(cookies)))
        if authority:
            headers.insert(0, (b"host", authority))
        if not ended and not has_length:
            # A body without Content-Length: the exchange forwards it chunked.
            headers.append((b"transfer-encoding", b"chunked"))
        stream = H2Stream(self, stream_id)
        self.streams[stream_id] = stream
        ex = Exchange(stream, method, path, headers, "2.0",  # type: ignore[arg-type]
                      True, self.last_active)
        stream.exchange = ex
        ex.start()  # the end of the request comes as a StreamEnded event

    def _body(self, stream_id: int, data: bytes, flow: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.exchange is None or not data:
            # An empty DATA frame (the END_STREAM of a streamed body) must not reach a
            # chunked upstream request: an empty chunk is its terminator.
            self.acknowledge(flow, stream_id)
            return
        stream.exchange.on_request_body(data)
        if stream.pauses and not stream.ended:
            stream.unacked += flow
        else:
            self.acknowledge(flow, stream_id)

    # -- used by streams --------------------------------------------------------------------
    def acknowledge(self, n: int, stream_id: int) -> None:
        try:
            self.h2.acknowledge_received_data(n, stream_id)
        except ProtocolError:
            return
        self.flush()

    def stream_closed(self, stream: H2Stream) -> None:
        if self.streams.get(stream.stream_id) is stream:
            del self.streams[stream.stream_id]
        self.last_active = self.loop.time()
        if self.state.draining and not self.streams:
            self.close()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        if self.closed or self.transport is None:
            return
        try:
            self.h2.close_connection()
            self.flush()
        except ProtocolError:
            pass
        self.closed = True
        self.transport.close()
