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
    STATUS_LINES,
    VIA_VALUE,
    status_line,
)
from tollway.dataplane.upstream.connection import Failure, UpstreamConnection

if TYPE_CHECKING:
    from tollway.dataplane.protocol import DownstreamProtocol
    from tollway.dataplane.snapshot import ServiceSpec, Snapshot

log = logging.getLogger("tollway.proxy")

REPLAY_LIMIT = 1 << 20  # request bodies up to 1 MiB are kept so a retry can re-send them
BODY_HIGH_WATER = 1 << 18  # buffered request body before reading from the client pauses

# Request headers the single pass over the client's headers treats specially.
H_HOST, H_CONNECTION, H_UPGRADE, H_EXPECT, H_TE, H_XFF, H_REPLACED, H_DROP, H_ACCEPT = range(9)
H_CTYPE, H_CLEN, H_TENC, H_XFPROTO, H_XFHOST, H_XFPORT, H_XFPATH, H_XFPREFIX = range(9, 17)
SPECIAL: dict[bytes, int] = {
    b"host": H_HOST, b"connection": H_CONNECTION, b"upgrade": H_UPGRADE, b"expect": H_EXPECT,
    b"te": H_TE, b"x-forwarded-for": H_XFF, b"x-real-ip": H_REPLACED,
    b"keep-alive": H_DROP, b"proxy-connection": H_DROP, b"proxy": H_DROP, b"trailer": H_DROP,
    b"content-length": H_CLEN, b"transfer-encoding": H_TENC,
    b"x-forwarded-proto": H_XFPROTO, b"x-forwarded-host": H_XFHOST,
    b"x-forwarded-port": H_XFPORT, b"x-forwarded-path": H_XFPATH,
    b"x-forwarded-prefix": H_XFPREFIX,
}
# Response headers the pass over the upstream's headers treats specially (§2.9).
R_CLEN, R_DATE, R_SERVER, R_VIA, R_TENC, R_UPGRADE, R_HOP = range(7)
RESPONSE_SPECIAL: dict[bytes, int] = {
    b"content-length": R_CLEN, b"date": R_DATE, b"server": R_SERVER, b"via": R_VIA,
    b"transfer-encoding": R_TENC, b"connection": R_UPGRADE, b"upgrade": R_UPGRADE,
    b"keep-alive": R_HOP, b"proxy-connection": R_HOP, b"proxy": R_HOP, b"te": R_HOP,
    b"trailer": R_HOP, b"proxy-authenticate": R_HOP,
}
# Accept and Content-Type are forwarded and also remembered for error-body negotiation.
REMEMBERED: dict[bytes, int] = {b"accept": H_ACCEPT, b"content-type": H_CTYPE}


class Exchange:
    # No __slots__: most fields keep their class-level default for most requests, and an
    # instance dict filled with the dozen that change is cheaper than assigning forty slots.
    t_upstream = 0.0
    request_id = ""
    host = b""
    accept: bytes | None = None
    req_ctype: bytes | None = None
    upgrade = False
    expect_continue = False
    te_trailers = False
    chunked_in = False
    has_body = False
    content_length = b""
    body_buffered = 0
    replay_size = 0
    req_size = 0
    conn: UpstreamConnection | None = None
    request_sent = False
    tries_left = 0
    tries = 0
    head = b""
    match: Any = None
    service: ServiceSpec | None = None
    response_started = False
    status = 0
    chunked_out = False
    resp_size = 0
    done = False
    error = ""
    continue_sent = False
    upstream_addr = ""
    tunnel = False
    head_sent = False

    def __init__(self, proto: DownstreamProtocol, method: bytes, url: bytes,
                 headers: list[tuple[bytes, bytes]], version: str, keep_alive: bool,
                 started: float) -> None:
        self.proto = proto
        self.state = proto.state
        self.loop = proto.loop
        self.snapshot: Snapshot = proto.state.snapshot  # pinned: a swap never changes a request
        self.method = method
        self.url = url
        self.headers = headers
        self.http11 = version == "1.1"
        self.keep_alive = keep_alive
        self.t_start = started
        self.fwd: list[bytes] = []
        self.forwarded: dict[int, bytes] = {}
        self.body_buf: list[bytes] = []
        self.replay: list[bytes] | None = []
        self._scan_headers()
        # httptools reports the end of a bodiless request only after on_headers_complete has
        # started the exchange; knowing it now lets a local reply keep the connection alive.
        self.req_complete = not self.has_body

    # -- request head -----------------------------------------------------------------------
    def _scan_headers(self) -> None:
        """One pass over the client's headers: remember what tollway needs, keep the rest in
        `fwd` ready to be sent upstream, drop hop-by-hop and replaced headers (§2.8)."""
        fwd = self.fwd
        special = SPECIAL
        conn_tokens: list[bytes] = []
        for name, value in self.headers:
            ln = name.lower()
            code = special.get(ln)
            if code is None:
                fwd.append(name + b": " + value + b"\r\n")
                code = REMEMBERED.get(ln)
                if code == H_ACCEPT:
                    self.accept = value
                elif code == H_CTYPE:
                    self.req_ctype = value
                continue
            if code == H_HOST:
                self.host = value
            elif code == H_CONNECTION:
                conn_tokens.extend(t.strip().lower() for t in value.split(b","))
            elif code == H_UPGRADE:
                self.upgrade = value.lower() == b"websocket" or self.upgrade
            elif code == H_EXPECT:
                self.expect_continue = value.lower() == b"100-continue"
            elif code == H_TE:
                self.te_trailers = b"trailers" in value.lower()
            elif code == H_CLEN:
                self.content_length = value
                self.has_body = value.strip() not in (b"0", b"")
            elif code == H_TENC:
                self.chunked_in = self.has_body = True
            elif code in (H_XFF, H_REPLACED) or code >= H_XFPROTO:
                self.forwarded[code] = value
        if conn_tokens:
            self.upgrade = self.upgrade and b"upgrade" in conn_tokens
            extra = {t for t in conn_tokens if t not in (b"keep-alive", b"close", b"upgrade")}
            if extra:  # headers the client named hop-by-hop (RFC 9110 §7.6.1)
                self.fwd = [line for line in fwd
                            if line.split(b":", 1)[0].lower() not in extra]
        else:
            self.upgrade = False

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
        host = self.host.decode("latin-1") if self.host else None
        router = snap.router
        headers = self._header_map() if router.uses_headers else None
        m = router.match(self.method.decode("latin-1"), host,
                         raw_path.decode("utf-8", "surrogateescape"), headers,
                         self.proto.scheme, None)
        if m is None:
            self.reply_error(404, local_reply.NO_ROUTE)
            return
        self.match = m
        route_spec = snap.routes[m.route["id"]]
        if route_spec.https_only and self.proto.scheme != "https" and not (
                self.proto.trusted
                and self.forwarded.get(H_XFPROTO, b"").strip().lower() == b"https"):
            self._https_redirect(route_spec.redirect_code)
            return
        if m.service is None:
            self.reply_error(503, local_reply.NO_SERVICE)
            return
        svc = snap.services[m.service["id"]]
        self.service = svc
        self.tries_left = svc.retries + 1
        self.head = self._build_head(m, svc, raw_path, qpos)
        self.dispatch()

    def _absolute_form(self, raw_path: bytes) -> bytes:
        # `GET http://host/path HTTP/1.1`: the authority replaces Host (RFC 9112 §3.2.2).
        scheme_end = raw_path.find(b"://")
        if scheme_end < 0:
            return b"/" + raw_path
        rest = raw_path[scheme_end + 3:]
        slash = rest.find(b"/")
        self.host = rest if slash < 0 else rest[:slash]
        return b"/" if slash < 0 else rest[slash:]

    def _header_map(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, value in self.headers:
            out.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        return out

    def _build_head(self, m: Any, svc: ServiceSpec, raw_path: bytes, qpos: int) -> bytes:
        proto = self.proto
        uri = m.upstream_path.encode("utf-8", "surrogateescape")
        if qpos >= 0:
            uri += self.url[qpos:]
        host = self.host if (m.route["preserve_host"] and self.host) else svc.host_header
        parts = [self.method, b" ", uri, b" HTTP/1.1\r\nHost: ", host, b"\r\n"]
        parts += self.fwd
        fw = self.forwarded
        client = proto.client_ip_bytes
        xff = fw.get(H_XFF)
        if xff:
            parts += (b"X-Forwarded-For: ", xff, b", ", client, b"\r\n")
        else:  # nginx's $remote_addr: the real-IP-processed address for a trusted peer
            parts += (b"X-Forwarded-For: ", self._real_ip() if proto.trusted else client,
                      b"\r\n")
        prefix = m.prefix
        if not proto.trusted:
            # Common case: nothing the client says about forwarding is believed.
            parts += (proto.static_forwarded, b"X-Forwarded-Host: ",
                      self.host.split(b":", 1)[0].lower() if self.host else b"",
                      b"\r\nX-Forwarded-Path: ", raw_path, b"\r\n")
            if prefix:
                parts += (b"X-Forwarded-Prefix: ", prefix.encode("utf-8", "surrogateescape"),
                          b"\r\n")
        else:
            fhost = fw.get(H_XFHOST)
            if fhost is None:
                fhost = self.host.split(b":", 1)[0].lower() if self.host else b""
            parts += (b"X-Forwarded-Proto: ", fw.get(H_XFPROTO, proto.scheme_bytes),
                      b"\r\nX-Forwarded-Host: ", fhost,
                      b"\r\nX-Forwarded-Port: ", fw.get(H_XFPORT, proto.port_bytes),
                      b"\r\nX-Forwarded-Path: ", fw.get(H_XFPATH, raw_path), b"\r\n")
            fprefix = fw.get(H_XFPREFIX)
            if fprefix is None and prefix:
                fprefix = prefix.encode("utf-8", "surrogateescape")
            if fprefix:
                parts += (b"X-Forwarded-Prefix: ", fprefix, b"\r\n")
            parts += (b"X-Real-IP: ", self._real_ip(), b"\r\n")
        if self.request_id and self.state.request_id_upstream:
            parts += (b"X-Tollway-Request-Id: ", self.request_id.encode(), b"\r\n")
        if self.te_trailers:
            parts.append(b"TE: trailers\r\n")
        if self.chunked_in:
            parts.append(b"Transfer-Encoding: chunked\r\n")
        elif self.content_length:
            parts += (b"Content-Length: ", self.content_length, b"\r\n")
        if self.upgrade:
            parts.append(b"Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n")
        else:
            parts.append(b"Connection: keep-alive\r\n\r\n")
        return b"".join(parts)

    def _real_ip(self) -> bytes:
        """The client address a trusted peer reports in `real_ip_header` (nginx realip)."""
        st = self.state
        name = st.real_ip_header
        if name == b"x-real-ip":
            value = self.forwarded.get(H_REPLACED)
        elif name == b"x-forwarded-for":
            value = self.forwarded.get(H_XFF)
            if value:
                hops = [h.strip() for h in value.split(b",") if h.strip()]
                value = hops[-1] if hops else None
                if st.real_ip_recursive:
                    # Walk from the right past every hop that is itself trusted.
                    for hop in reversed(hops):
                        value = hop
                        if not st.is_trusted(hop.decode("latin-1")):
                            break
        else:
            value = next((v for n, v in self.headers if n.lower() == name), None)
        return value.strip() if value else self.proto.client_ip_bytes

    def _https_redirect(self, code: int) -> None:
        if code == 426:
            self.reply_error(426, local_reply.USE_HTTPS,
                             extra=[b"Connection: Upgrade\r\nUpgrade: TLS/1.2, HTTP/1.1\r\n"])
            return
        host = self.forwarded.get(H_XFHOST) if self.proto.trusted else None
        location = b"https://" + (host or self.host.split(b":", 1)[0]) + self.url
        self.reply(code, b"", None, extra=[b"Location: " + location + b"\r\n"])

    # -- request body -----------------------------------------------------------------------
    def on_request_body(self, chunk: bytes) -> None:
        self.req_size += len(chunk)
        limit = self.state.client_max_body_size
        if limit and self.req_size > limit and not self.done:
            # A chunked body has no Content-Length to check up front.
            self.too_large()
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

    def too_large(self) -> None:
        conn = self.conn
        self.conn = None
        if conn is not None:
            conn.detach()
        self.keep_alive = False
        if self.response_started:
            self._finish(abort=True)
        else:
            self.reply_error(413, local_reply.default_message(413), nginx=True)

    def on_request_end(self) -> None:
        self.req_complete = True
        conn = self.conn
        if conn is not None and not self.done:
            if self.chunked_in:
                conn.send(b"0\r\n\r\n")
            self._request_fully_sent(conn)

    def _request_fully_sent(self, conn: UpstreamConnection) -> None:
        self.request_sent = True
        svc = self.service
        if svc is not None:
            conn.set_timeout(svc.read_timeout)

    # -- upstream dispatch ------------------------------------------------------------------
    def dispatch(self) -> None:
        svc = self.service
        assert svc is not None
        self.tries += 1
        self.tries_left -= 1
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
        origin = svc.origin
        if origin is None:
            try:
                origin = await st.resolver.resolve(svc.host, svc.port, svc.sni)
            except OSError:
                if not self.done:
                    self.error = "name resolution failed"
                    self.reply_error(503, local_reply.NAME_RESOLUTION)
                return
            idle = st.pool.acquire(origin)
            if idle is not None:
                if not self.done:
                    self._attach(idle)
                else:
                    st.pool.release(idle)
                return
        ip, port, sni = origin
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: UpstreamConnection(st.pool, origin), ip, port,
                    ssl=svc.ssl_context if sni else None, server_hostname=sni),
                svc.connect_timeout)
        except TimeoutError:
            self.on_upstream_error(Failure.CONNECT_TIMEOUT, False)
            return
        except (OSError, ssl.SSLError):
            self.on_upstream_error(Failure.CONNECT, False)
            return
        sock = conn.transport.get_extra_info("socket") if conn.transport else None
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.done:
            st.pool.release(conn)
            return
        self._attach(conn)

    def _attach(self, conn: UpstreamConnection) -> None:
        svc = self.service
        assert svc is not None
        self.conn = conn
        self.upstream_addr = conn.origin[0]
        self.t_upstream = self.loop.time()
        if self.expect_continue and not self.continue_sent and not self.req_complete:
            self.continue_sent = True
            self.proto.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        # A retry re-sends everything (kept in `replay`); a first try sends what was buffered.
        body = (self.replay or []) if self.head_sent else self.body_buf
        self.head_sent = True
        timeout = svc.read_timeout if self.req_complete else svc.write_timeout
        conn.attach(self, self.head, timeout, self.method == b"HEAD")
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
            self._request_fully_sent(conn)

    def on_upstream_error(self, kind: Failure, response_started: bool) -> None:
        self.conn = None
        if self.done:
            return
        if response_started or self.response_started:
            # Bytes of the response already went to the client: nothing to retry or to
            # report; cut the connection so the client sees a truncated response.
            self.error = "upstream closed the connection mid-response"
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
            self.error = "upstream timed out"
            self.reply_error(504, local_reply.default_message(504), nginx=True)
        else:
            self.error = {Failure.CONNECT: "connection refused",
                          Failure.RESET: "upstream closed the connection",
                          Failure.INVALID: "invalid response from upstream"}.get(kind, "error")
            self.reply_error(502, local_reply.default_message(502), nginx=True)

    def upstream_write_paused(self, paused: bool) -> None:
        if paused:
            self.proto.pause(PAUSE_UPSTREAM)
        else:
            self.proto.resume(PAUSE_UPSTREAM)

    # -- response ---------------------------------------------------------------------------
    def on_response_head(self, status: int, headers: list[tuple[bytes, bytes]],
                         no_body: bool) -> bool:
        """Send the response head downstream. Returns whether the upstream framed the body
        (Content-Length or chunked); if not, the upstream's close ends it."""
        if self.done:
            return True
        now = self.loop.time()
        st = self.state
        self.response_started = True
        self.status = status
        parts = [STATUS_LINES.get(status) or status_line(status)]
        via = b""
        has_server = has_date = framed = False
        clen: bytes | None = None
        upgrade = status == 101
        special = RESPONSE_SPECIAL
        for name, value in headers:
            code = special.get(name.lower())
            if code is None:
                parts.append(name + b": " + value + b"\r\n")
            elif code == R_CLEN:
                clen = value
                framed = True
            elif code == R_DATE:
                has_date = True
                parts.append(name + b": " + value + b"\r\n")
            elif code == R_SERVER:
                has_server = True
                parts.append(name + b": " + value + b"\r\n")
            elif code == R_VIA:
                via = value
            elif code == R_TENC:
                framed = True
            elif upgrade and code == R_UPGRADE:
                parts.append(name + b": " + value + b"\r\n")
        if not has_date:
            parts += (b"Date: ", st.date, b"\r\n")
        if upgrade:
            self.tunnel = True
        elif clen is not None:
            parts += (b"Content-Length: ", clen, b"\r\n")
        elif no_body:
            pass
        elif self.http11:
            parts.append(b"Transfer-Encoding: chunked\r\n")
            self.chunked_out = True
        else:
            self.keep_alive = False  # HTTP/1.0 client: the close ends the body
        flags = st.header_flags
        if flags.via:
            parts += (b"Via: ", via + b", " + VIA_VALUE if via else VIA_VALUE, b"\r\n")
        elif via:
            parts += (b"Via: ", via, b"\r\n")
        if flags.server and not has_server:
            parts.append(local_reply.SERVER_LINE)
        if flags.latency:
            t_up = self.t_upstream
            parts.append(b"X-Tollway-Upstream-Latency: %d\r\nX-Tollway-Proxy-Latency: %d\r\n"
                         % ((now - t_up) * 1000, (t_up - self.t_start) * 1000))
        else:
            if flags.upstream_latency:
                parts.append(b"X-Tollway-Upstream-Latency: %d\r\n"
                             % ((now - self.t_upstream) * 1000))
            if flags.proxy_latency:
                parts.append(b"X-Tollway-Proxy-Latency: %d\r\n"
                             % ((self.t_upstream - self.t_start) * 1000))
        if flags.request_id:
            parts += (b"X-Tollway-Request-Id: ", self.request_id.encode(), b"\r\n")
        if not upgrade:
            if not self.keep_alive or st.draining:
                self.keep_alive = False
                parts.append(b"Connection: close\r\n\r\n")
            elif not self.http11:
                parts.append(b"Connection: keep-alive\r\n\r\n")
            else:
                parts.append(b"\r\n")
        else:
            parts.append(b"\r\n")
        self.proto.write(b"".join(parts))
        return framed or no_body

    def on_response_body(self, data: bytes) -> None:
        if self.done:
            return
        self.resp_size += len(data)
        if self.chunked_out:
            self.proto.writelines([b"%x\r\n" % len(data), data, b"\r\n"])
        else:
            self.proto.write(data)

    def on_response_end(self) -> None:
        self.conn = None
        if self.done:
            return
        if self.chunked_out:
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
            self.error = self.error or "client closed the connection"
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
    def reply_error(self, status: int, message: str, *, nginx: bool = False,
                    extra: list[bytes] | None = None) -> None:
        """Kong's error body (§2.12). `nginx` errors fall back on the request's Content-Type
        and then text/plain; `kong.response.error` ones default to JSON."""
        if not self.request_id:
            self.request_id = self.state.new_request_id()
        if nginx:
            fallback = local_reply.negotiate(self.req_ctype, local_reply.TEXT)
            ctype = local_reply.negotiate(self.accept, fallback)
        else:
            ctype = local_reply.negotiate(self.accept, local_reply.JSON)
        body = local_reply.render_body(message, self.request_id, ctype)
        self.reply(status, body, ctype, extra=extra)

    def reply(self, status: int, body: bytes, ctype: bytes | None, *,
              extra: list[bytes] | None = None) -> None:
        st = self.state
        self.status = status
        if not self.req_complete:
            self.keep_alive = False  # the unread body would be parsed as the next request
        keep = self.keep_alive and not st.draining
        self.keep_alive = keep
        lines = list(extra or ())
        flags = st.header_flags
        if flags.server:
            lines.append(local_reply.SERVER_LINE)
        if flags.response_latency:
            lines.append(b"X-Tollway-Response-Latency: %d\r\n"
                         % int((self.loop.time() - self.t_start) * 1000))
        if flags.request_id and self.request_id:
            lines.append(b"X-Tollway-Request-Id: " + self.request_id.encode() + b"\r\n")
        if keep and not self.http11:
            lines.append(b"Connection: keep-alive\r\n")
        if ctype is None:
            head = [status_line(status), b"Date: ", st.date,
                    b"\r\nContent-Length: 0\r\n", *lines,
                    b"" if keep else b"Connection: close\r\n", b"\r\n"]
            self.proto.write(b"".join(head))
        else:
            self.resp_size = len(body)
            self.proto.write(local_reply.build(status, ctype, body, date=st.date, extra=lines,
                                               keep_alive=keep,
                                               head_only=self.method == b"HEAD"))
        self._finish()

    def _finish(self, abort: bool = False) -> None:
        if self.done:
            return
        self.done = True
        st = self.state
        if st.access_log is not None:
            st.access_log.log(self)
        if self.status >= 500:
            st.stats_errors += 1
        proto = self.proto
        # Whatever this exchange paused, it no longer needs paused.
        proto.resume(PAUSE_BODY | PAUSE_UPSTREAM)
        if abort:
            proto.exchange_done(self, False)
            if proto.transport is not None and not proto.closed:
                proto.closed = True
                proto.transport.abort()
            return
        proto.exchange_done(self, self.keep_alive and self.req_complete)
