"""The exchange: one request's trip through the gateway, and the only orchestrator.

    start ─► route ─► (protocol checks) ─► dispatch ─► attach to an upstream connection
                │                            ▲   │
                └─► local reply (404/426/503)│   └─► connect (task, only without an idle conn)
                                             │
            on_upstream_error ── retry? ─────┘──► 502 / 504 local reply
            on_response_head / body / end ──► downstream ──► finish: access log, next request

The common case — an idle keep-alive connection exists — runs entirely in protocol callbacks:
no task, no await. A task is only created to open a new upstream connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import TYPE_CHECKING, Any

from tollway.dataplane import local_reply
from tollway.dataplane.http import (
    IDEMPOTENT,
    PAUSE_BODY,
    PAUSE_UPSTREAM,
)
from tollway.dataplane.plugin_api import PluginAPI
from tollway.dataplane.request_head import H_XFPROTO, RequestHead
from tollway.dataplane.response import ResponseWriter
from tollway.dataplane.upstream import health
from tollway.dataplane.upstream.connection import Failure, UpstreamConnection
from tollway.plugins.chain import EMPTY

if TYPE_CHECKING:
    from tollway.dataplane.protocol import DownstreamProtocol
    from tollway.dataplane.snapshot import ServiceSpec, Snapshot
    from tollway.dataplane.upstream.balancer import Balancer, Peer
    from tollway.dataplane.upstream.pool import Origin

log = logging.getLogger("tollway.proxy")

REPLAY_LIMIT = 1 << 20  # request bodies up to 1 MiB are kept so a retry can re-send them
BODY_HIGH_WATER = 1 << 18  # buffered request body before reading from the client pauses
NO_PEER = "failure to get a peer from the ring-balancer"
NOT_SEEN: Any = object()  # Router.by_raw has no answer for this request yet

class Exchange(RequestHead, ResponseWriter, PluginAPI):
    # The fields every proxied request touches live in slots, set in __init__. Why not an
    # instance dict with class-level defaults: CPython (3.11+) keeps an instance's
    # attributes inline only while its class has seen at most 30 attribute names (its
    # shared keys, SHARED_KEYS_MAX_SIZE); an exchange sets ~40, so every exchange's dict
    # was materialised mid-request and each attribute access after that was a dict
    # lookup (see docs/performance.md).
    # Fields most requests never set keep class-level defaults below (an instance dict).
    __slots__ = (
        "_ctx", "_raw", "accept", "balancer", "body_buf", "chain", "chunked_in",
        "chunked_out", "conn", "consumer", "content_length", "credential", "ctx", "done",
        "forwarded", "fwd", "has_body", "head", "head_sent", "headers", "held", "host",
        "http11", "keep_alive", "loop", "match", "method", "peer", "proto", "qpos",
        "raw_path", "replay", "req_complete", "req_ctype", "req_overlay", "req_size",
        "request_id", "request_sent", "resp_extra", "resp_size", "response_started",
        "service", "snapshot", "state", "status", "t_response", "t_start", "t_upstream",
        "tries", "tries_left", "upgrade", "upstream_addr", "url", "version",
    )
    t_upstream: float  # when the request was handed to an upstream connection
    t_response: float  # when the upstream's response head arrived
    conn: UpstreamConnection | None
    match: Any
    service: ServiceSpec | None
    # Load balancing (upstream/balancer.py): the service's upstream, or one a plugin chose
    # with req.set_upstream; the address of the current try; the addresses tried before.
    balancer: Balancer | None
    peer: Peer | None
    tried: list[Peer] | None = None
    expect_continue = False
    te_trailers = False
    body_buffered = 0
    replay_size = 0
    fail_reason = ""  # why the exchange failed, for the access log
    continue_sent = False
    tunnel = False
    # Request-body hooks, off unless a plugin asks (see _body_hook): buffering the whole body
    # for the access phase, and/or a per-request body limit (req.limit_body).
    body_hook = False
    buffering = False
    body_chunks: list[bytes] | None = None
    buffer_limit = 0
    req_body: bytes | None = None
    body_max = 0
    body_max_reply: tuple[int, str | None] = (413, None)

    def __init__(self, proto: DownstreamProtocol, method: bytes, url: bytes,
                 headers: list[tuple[bytes, bytes]], version: str | None, keep_alive: bool,
                 started: float) -> None:
        self.proto = proto
        self.state = proto.state
        self.loop = proto.loop
        self.snapshot: Snapshot = proto.state.snapshot  # pinned: a swap never changes a request
        self.method = method
        self.url = url
        self.headers = headers
        self.keep_alive = keep_alive
        self.t_start = started
        self.fwd: list[bytes] = []
        self.forwarded: dict[int, bytes] = {}
        self.body_buf: list[bytes] = []
        self.replay: list[bytes] | None = []
        # what _scan_headers may set
        self.host = b""
        self.accept = None
        self.req_ctype = None
        self.upgrade = False
        self.has_body = False
        self.content_length = b""
        self.chunked_in = False
        # the rest of the request's life
        self.t_upstream = self.t_response = 0.0
        self.request_id = ""
        self.conn = None
        self.request_sent = self.response_started = self.chunked_out = False
        self.done = self.head_sent = False
        self.tries_left = self.tries = self.status = self.resp_size = self.req_size = 0
        self.head = b""
        self.match = self.service = self.balancer = self.peer = None
        self.upstream_addr = ""
        self.raw_path = b"/"
        self.qpos = -1
        self.held = None
        self.chain = EMPTY
        self.consumer = self.credential = self.req_overlay = None
        self.resp_extra = self._ctx = self._raw = None
        connection_named = self._scan_headers()
        if version is None:
            # HTTP/1.x: httptools makes its version string with a str.format per call
            # (~130 ns). llhttp takes 0.9, 1.0, 1.1 and 2.0 only, and says keep-alive for
            # anything but 1.1 only when a Connection (or Proxy-Connection) header asks:
            # keep-alive without either is HTTP/1.1, the usual request. Otherwise, ask.
            version = ("1.1" if keep_alive and not connection_named
                       else proto.parser.get_http_version())
        self.version = version  # "0.9", "1.0", "1.1", or "2.0" (also an HTTP/2 stream)
        self.http11 = version == "1.1"
        # httptools reports the end of a bodiless request only after on_headers_complete has
        # started the exchange; knowing it now lets a local reply keep the connection alive.
        self.req_complete = not self.has_body

    # -- request head -----------------------------------------------------------------------
    def start(self) -> None:
        """Route and dispatch. Called when this exchange is first in the connection's queue."""
        try:
            self._start()
        except Exception:
            # A bug must cost one request a 500 (Kong's body), never the worker.
            log.exception("unexpected error handling %r", self.url[:200])
            if not self.response_started and not self.done:
                self.keep_alive = False
                self.reply_error(500, local_reply.default_message(500))

    def _start(self) -> None:
        st = self.state
        st.stats_requests += 1
        if st.request_id_needed:
            try:
                self.request_id = st.next_request_id_or_raise()
            except IndexError:
                self.request_id = st.new_request_id()
        limit = st.client_max_body_size
        if limit and self.content_length and int(self.content_length) > limit:
            self.keep_alive = False
            self.reply_error(413, local_reply.default_message(413), nginx=True)
            return
        snap = self.snapshot
        url = self.url
        qpos = url.find(b"?")
        raw_path = url if qpos < 0 else url[:qpos]
        if raw_path[:1] != b"/":
            raw_path = self._absolute_form(raw_path)
        router = snap.router
        by_raw = router.by_raw
        if by_raw is not None:  # the usual case: a route answer by the request's bytes
            key = (self.method, self.host, raw_path)
            m = by_raw.get(key, NOT_SEEN)
            if m is NOT_SEEN:
                m = router.match_raw(key, self.proto.scheme, self.proto.sni)
            headers = None
        else:
            headers = self._headers_map() if router.uses_headers else None
            m = router.match(self.method.decode("latin-1"),
                             self.host.decode("latin-1") if self.host else None,
                             raw_path.decode("utf-8", "surrogateescape"), headers,
                             self.proto.scheme, self.proto.sni)
        if m is None and self.method == b"OPTIONS":
            m = self._preflight_route(self.host.decode("latin-1") if self.host else None,
                                      raw_path.decode("utf-8", "surrogateescape"), headers)
        if m is None:
            self.chain = snap.global_chain
            self.ctx = self._ctx = {}  # (see PluginAPI.ctx)
            self.reply_error(404, local_reply.NO_ROUTE)
            return
        self.match = m
        self.raw_path = raw_path
        self.qpos = qpos
        route_spec = snap.routes[m.route["id"]]
        if route_spec.https_only and self.proto.scheme != "https" and not (
                self.proto.trusted
                and self.forwarded.get(H_XFPROTO, b"").strip().lower() == b"https"):
            self._https_redirect(route_spec.redirect_code)
            return
        chain = route_spec.chain
        if chain is not None:
            self.chain = chain
            self.ctx = self._ctx = {}  # (see PluginAPI.ctx)
            if chain.buffers_body and self.has_body and not self.upgrade:
                self._buffer_body(chain.body_limit)
                return  # the access phase runs once the whole body is read
            if chain.access and not chain.access_run(self):
                return  # answered by a plugin, or continuing after the plugin's I/O
        self.proceed()

    def proceed(self) -> None:
        """After the access phase: the service (503 without one), the head, the upstream."""
        m = self.match
        if m.service is None:
            self.reply_error(503, local_reply.NO_SERVICE)
            return
        svc = self.snapshot.services[m.service["id"]]
        self.service = svc
        if self.balancer is None:
            self.balancer = svc.balancer
        self.tries_left = svc.retries + 1
        self.head = self._build_head(m, svc, self.raw_path, self.qpos)
        self.dispatch()

    # -- request body -----------------------------------------------------------------------
    def on_request_body(self, chunk: bytes) -> None:
        self.req_size += len(chunk)
        limit = self.state.client_max_body_size
        if limit and self.req_size > limit and not self.done:
            # A chunked body has no Content-Length to check up front.
            self.too_large()
            return
        if self.body_hook and self._body_hook(chunk):
            return
        replay = self.replay
        if replay is not None:
            self.replay_size += len(chunk)
            if self.replay_size > REPLAY_LIMIT:
                self.replay = None
            else:
                replay.append(chunk)
        conn = self.conn
        if conn is not None and not self.done:
            if self.chunked_in:
                conn.send_many([b"%x\r\n" % len(chunk), chunk, b"\r\n"])
            else:
                conn.send(chunk)
            return
        if self.done:
            return  # a local reply was sent; the rest of the body is discarded
        self.body_buf.append(chunk)
        self.body_buffered += len(chunk)
        if self.body_buffered > BODY_HIGH_WATER:
            self.proto.pause(PAUSE_BODY)

    def too_large(self, status: int = 413, message: str | None = None) -> None:
        """The body is over a limit: nginx's 413, or (`message` given) a plugin's
        kong.response.error reply; cut the upstream request if one was started."""
        conn = self.conn
        self.conn = None
        if conn is not None:
            conn.detach()
        self.keep_alive = False
        self.buffering = False
        self.body_chunks = None
        if self.response_started:
            self._finish(abort=True)
        elif message is None:
            self.reply_error(status, local_reply.default_message(status), nginx=True)
        else:
            self.reply_error(status, message)

    def _body_hook(self, chunk: bytes) -> bool:
        """Slow path for request bodies, only when a plugin asked. True: chunk consumed."""
        if self.done:
            return True
        if self.body_max and self.req_size > self.body_max:
            self.too_large(*self.body_max_reply)
            return True
        chunks = self.body_chunks
        if chunks is not None:
            if self.req_size > self.buffer_limit:
                self.too_large()
            else:
                chunks.append(chunk)
            return True
        return False

    def _buffer_body(self, limit: int) -> None:
        """Read the whole request body before the access phase (a plugin wants it)."""
        if (self.content_length and int(self.content_length) > limit) or self.req_size > limit:
            self.too_large()
            return
        self.buffer_limit = limit
        self.body_hook = self.buffering = True
        # A queued (pipelined) request may have part or all of its body read already.
        self.body_chunks = self.body_buf
        self.body_buf = []
        self.body_buffered = 0
        self.proto.resume(PAUSE_BODY)
        if self.req_complete:
            self._body_complete()
        elif self.expect_continue and not self.continue_sent:
            self.continue_sent = True
            self.proto.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _body_complete(self) -> None:
        chunks = self.body_chunks or []
        self.body_chunks = None
        self.buffering = False
        self.set_buffered_body(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        try:
            chain = self.chain
            if chain.access and not chain.access_run(self):
                return
            self.proceed()
        except Exception:
            log.exception("unexpected error handling %r", self.url[:200])
            if not self.response_started and not self.done:
                self.keep_alive = False
                self.reply_error(500, local_reply.default_message(500))

    def set_buffered_body(self, body: bytes) -> None:
        """The body sent upstream, all in memory: Content-Length framing, and a retry
        re-sends it whatever its size."""
        self.req_body = body
        self.chunked_in = False
        self.content_length = b"%d" % len(body)
        self.body_buf = [body] if body else []
        self.body_buffered = 0
        self.replay = [body] if body else []
        self.replay_size = len(body)

    def on_request_end(self) -> None:
        self.req_complete = True
        if self.buffering:
            if not self.done:
                self._body_complete()
            return
        conn = self.conn
        # (a request without a body was sent whole when it was attached: nothing to do)
        if conn is not None and not self.done and not self.request_sent:
            if self.chunked_in:
                conn.send(b"0\r\n\r\n")
            self.request_sent = True  # the request is sent whole: now the read timeout
            svc = self.service
            if svc is not None:
                conn.set_timeout(svc.read_timeout)

    # -- upstream dispatch ------------------------------------------------------------------
    def dispatch(self) -> None:
        svc = self.service
        assert svc is not None
        self.tries += 1
        self.tries_left -= 1
        bal = self.balancer
        if bal is not None:
            peer = bal.pick(self, self.tried)
            if peer is None:
                self.fail_reason = f"{NO_PEER}: upstream {bal.name}: {bal.why_none()}"
                log.error("%s", self.fail_reason)
                self.reply_error(503, NO_PEER)
                return
            self.peer = peer
            origin: Origin | None = svc.peer_origin(peer.origin)
        else:
            origin = svc.origin
        if origin is not None:
            conn = self.state.pool.acquire(origin)
            if conn is not None:
                self._attach(conn)
                return
        task = self.loop.create_task(self._connect(svc))
        tasks = self.state.tasks  # keep a reference: the loop holds tasks only weakly
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _connect(self, svc: ServiceSpec) -> None:
        st = self.state
        peer = self.peer
        origin = svc.peer_origin(peer.origin) if peer is not None else svc.origin
        if origin is None:
            try:
                origin = await st.resolver.resolve(svc.host, svc.port, svc.sni, svc.tls_key)
            except OSError:
                if not self.done:
                    self.fail_reason = "name resolution failed"
                    self.reply_error(503, local_reply.NAME_RESOLUTION)
                return
            idle = st.pool.acquire(origin)
            if idle is not None:
                if not self.done:
                    self._attach(idle)
                else:
                    st.pool.release(idle)
                return
        ip, port, sni, _ = origin
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: UpstreamConnection(st.pool, origin), ip, port,
                    ssl=svc.ssl_context if sni else None, server_hostname=sni),
                svc.connect_timeout)
        except TimeoutError:
            if peer is not None:
                peer.failed(health.TIMEOUT)
            self.on_upstream_error(Failure.CONNECT_TIMEOUT, False)
            return
        except (OSError, ssl.SSLError):
            if peer is not None:
                peer.failed(health.TCP_FAILURE)
            self.on_upstream_error(Failure.CONNECT, False)
            return
        sock = conn.transport.get_extra_info("socket") if conn.transport else None
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.done:
            if peer is not None:
                peer.release()
            st.pool.release(conn)
            return
        self._attach(conn)

    def _attach(self, conn: UpstreamConnection) -> None:
        svc = self.service
        assert svc is not None
        self.conn = conn
        self.upstream_addr = conn.origin[0]
        self.t_upstream = self.loop.time()
        peer = self.peer
        if peer is not None:
            conn.peer = peer  # the connection reports this try's outcome (passive checks)
        if self.expect_continue and not self.continue_sent and not self.req_complete:
            self.continue_sent = True
            self.proto.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        # A retry re-sends everything (kept in `replay`); a first try sends what was buffered.
        body = (self.replay or []) if self.head_sent else self.body_buf
        self.head_sent = True
        timeout = svc.read_timeout if self.req_complete else svc.write_timeout
        # A head that is the whole request may leave with the iteration's others (write_soon);
        # a chunked request's last chunk and an upgrade's first frames follow the head.
        whole = not body and self.req_complete and not self.chunked_in and not self.upgrade
        conn.attach(self, self.head, timeout, self.method == b"HEAD", whole)
        if body:
            if self.chunked_in:
                framed: list[bytes] = []
                for chunk in body:
                    framed += (b"%x\r\n" % len(chunk), chunk, b"\r\n")
                conn.send_many(framed)
            else:
                conn.send_many(list(body))
            self.body_buf = []
            self.body_buffered = 0
            self.proto.resume(PAUSE_BODY)
        if self.req_complete:
            if self.chunked_in:
                conn.send(b"0\r\n\r\n")
            self.request_sent = True  # (attach set the read timeout already)

    def on_upstream_error(self, kind: Failure, response_started: bool) -> None:
        self.conn = None
        peer = self.peer
        if peer is not None:
            # A retry moves on to another address while one is usable. After a connect
            # failure no connection holds the peer, so its attempt ends here.
            if kind in (Failure.CONNECT, Failure.CONNECT_TIMEOUT):
                peer.release()
            self.peer = None
            if self.tried is None:
                self.tried = [peer]
            else:
                self.tried.append(peer)
        if self.done:
            return
        if response_started or self.response_started:
            # Bytes of the response already went to the client: nothing to retry or to
            # report; cut the connection so the client sees a truncated response.
            self.fail_reason = "upstream closed the connection mid-response"
            self.keep_alive = False
            self._finish(abort=True)
            return
        sent = kind not in (Failure.CONNECT, Failure.CONNECT_TIMEOUT)
        retryable = kind != Failure.INVALID and (
            not sent or (self.method.decode("latin-1") in IDEMPOTENT
                         and self.req_complete and self.replay is not None))
        if retryable and self.tries_left > 0 and not self.proto.closed:
            self.dispatch()
            return
        if kind in (Failure.TIMEOUT, Failure.CONNECT_TIMEOUT):
            self.fail_reason = "upstream timed out"
            self.reply_error(504, local_reply.default_message(504), nginx=True)
        else:
            self.fail_reason = {Failure.CONNECT: "connection refused",
                          Failure.RESET: "upstream closed the connection",
                          Failure.INVALID: "invalid response from upstream"}.get(kind, "error")
            self.reply_error(502, local_reply.default_message(502), nginx=True)

    def upstream_write_paused(self, paused: bool) -> None:
        if paused:
            self.proto.pause(PAUSE_UPSTREAM)
        else:
            self.proto.resume(PAUSE_UPSTREAM)

    # -- response ---------------------------------------------------------------------------
    def on_response_end(self) -> None:
        self.conn = None
        if self.done:
            return
        if self.chain.body:
            tail = self.run_body(b"", True)
            if tail:
                self.flush_held()
                self.resp_size += len(tail)
                if self.chunked_out:
                    self.proto.writelines([b"%x\r\n" % len(tail), tail, b"\r\n"])
                else:
                    self.proto.write(tail)
        held = self.held
        if self.chunked_out:
            if held is not None:
                self.held = None
                self.proto.writelines([held, b"0\r\n\r\n"])
            else:
                self.proto.write(b"0\r\n\r\n")
        self._finish()

    def downstream_write_paused(self, paused: bool) -> None:
        conn = self.conn
        if conn is not None:
            conn.pause_reading(paused)

    def downstream_lost(self) -> None:
        conn = self.conn
        self.conn = None
        if conn is not None:
            conn.detach()
        if not self.done:
            self.fail_reason = self.fail_reason or "client closed the connection"
            self.keep_alive = False
            self._finish(abort=True)

    # -- websocket tunnel -------------------------------------------------------------------
    def on_tunnel_data(self, data: bytes) -> None:
        self.resp_size += len(data)
        self.proto.write(data)

    def on_tunnel_closed(self) -> None:
        self.conn = None
        self.keep_alive = False
        self._finish()

    def end_tunnel(self) -> None:
        conn = self.conn
        self.conn = None
        if conn is not None:
            conn.detach()
        self.on_tunnel_closed()

    def on_downstream_tunnel_data(self, data: bytes) -> None:
        conn = self.conn
        if conn is not None:
            conn.send(data)
        else:
            self.body_buf.append(data)  # upgrade request still waiting for its connection

    # -- local replies and the end ----------------------------------------------------------
    def _finish(self, abort: bool = False) -> None:
        if self.done:
            return
        self.done = True
        if self.held is not None:
            self.flush_held()
        st = self.state
        chain = self.chain
        if chain.log:
            chain.log_run(self)
        if st.access_log is not None:
            st.access_log.log(self)
        if self.status >= 500:
            st.stats_errors += 1
        proto = self.proto
        # Whatever this exchange paused, it no longer needs paused.
        if proto.pauses:
            proto.resume(PAUSE_BODY | PAUSE_UPSTREAM)
        if abort:
            proto.exchange_done(self, False)
            if proto.transport is not None and not proto.closed:
                proto.closed = True
                proto.transport.abort()
            return
        proto.exchange_done(self, self.keep_alive and self.req_complete)
