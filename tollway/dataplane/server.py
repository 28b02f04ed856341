"""A worker's serving loop: listeners, the current snapshot, the 1 Hz tick and the drain.

    ServerState ── snapshot (swapped whole) ── pool ── resolver ── access log ── counters
        ▲
        └── DownstreamProtocol × connections

`ServerState` is the only object shared by every connection of a worker. Values derived from
settings (header flags, trusted networks) are computed here once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from tollway.dataplane.accesslog import AccessLog
from tollway.dataplane.protocol import DownstreamProtocol
from tollway.dataplane.resolver import Resolver
from tollway.dataplane.snapshot import Snapshot
from tollway.dataplane.tls import (
    Certificates,
    ServerOptions,
    install_sni_callback,
    server_context,
    server_options,
)
from tollway.dataplane.upstream.pool import Pool

if TYPE_CHECKING:
    from tollway.config.model import Config
    from tollway.settings import Listen, Settings

# A downstream connection idle (keep-alive) or stuck sending its request head this long is
# closed, as nginx's keepalive_timeout / client_header_timeout (both 60 s by default).
KEEPALIVE_TIMEOUT = 60.0
CLIENT_HEADER_TIMEOUT = 60.0
DRAIN_IDLE = 0.5
REQUEST_IDS_PER_READ = 256
ID_CUT = re.compile(".{32}")


@dataclass(frozen=True, slots=True)
class HeaderFlags:
    via: bool
    server: bool
    proxy_latency: bool
    upstream_latency: bool
    response_latency: bool
    request_id: bool
    latency: bool  # both upstream and proxy latency: one formatted line


class ServerState:
    def __init__(self, settings: Settings, config: Config,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self.loop = loop
        self.resolver = Resolver.from_settings(settings)
        # Plugin state that must survive config swaps (counters, caches, clients).
        self.plugin_state: dict[str, Any] = {}
        self.snapshot = Snapshot(config, self.resolver, settings, self.plugin_state)
        # TLS listeners: the default certificate and the SNI map of the current config, one
        # map per ALPN variant in use (listeners with and without `http2`).
        self.tls: ServerOptions | None = None
        self.certificates: dict[bool, Certificates] = {}
        ssl_listens = [listen for listen in settings.proxy_listen if listen.ssl]
        if ssl_listens:
            self.tls = server_options(settings)
            self.certificates = self._certificates(config, {listen.http2
                                                            for listen in ssl_listens})
        self.pool = Pool(loop, size=settings.keepalive_pool_size,
                         max_requests=settings.keepalive_max_requests or 1 << 62,
                         idle_timeout=settings.keepalive_idle_timeout)
        h = settings.headers
        self.header_flags = HeaderFlags(
            via="via" in h, server="server" in h,
            proxy_latency="x-tollway-proxy-latency" in h,
            upstream_latency="x-tollway-upstream-latency" in h,
            response_latency="x-tollway-response-latency" in h,
            request_id="x-tollway-request-id" in h,
            latency="x-tollway-proxy-latency" in h and "x-tollway-upstream-latency" in h,
        )
        log_path = settings.proxy_access_log
        self.access_log = None if log_path in ("off", "") else AccessLog(loop, log_path)
        self.request_id_needed = self.header_flags.request_id or self.access_log is not None
        self._request_ids: list[str] = []
        # The next request id without a Python call: raises IndexError when the batch is
        # used up (then call new_request_id). The list is only ever refilled in place.
        self.next_request_id_or_raise = self._request_ids.pop
        self.request_id_upstream = True
        self.client_max_body_size = settings.client_max_body_size
        self.trusted_ips = settings.trusted_ips
        self.real_ip_header = settings.real_ip_header.lower().encode()
        self.real_ip_recursive = settings.real_ip_recursive
        self._trust_cache: dict[str, bool] = {}
        self.connections: set[DownstreamProtocol] = set()
        self.tasks: set[asyncio.Task[None]] = set()  # upstream connects in flight
        self.draining = False
        self.date = b""
        # counters for /status (Kong's server block)
        self.stats_accepted = 0
        self.stats_handled = 0
        self.stats_requests = 0
        self.stats_rejected = 0
        self.stats_errors = 0
        self.tick()

    # -- per connection ---------------------------------------------------------------------
    def connection_opened(self, proto: DownstreamProtocol) -> None:
        self.stats_accepted += 1
        self.stats_handled += 1
        self.connections.add(proto)
        proto.client_ip_bytes = proto.client_ip.encode()
        proto.trusted = self.is_trusted(proto.client_ip) if self.trusted_ips else False
        proto.static_forwarded = (b"X-Forwarded-Proto: " + proto.scheme_bytes
                                  + b"\r\nX-Forwarded-Port: " + proto.port_bytes
                                  + b"\r\nX-Real-IP: " + proto.client_ip_bytes + b"\r\n")
        if self.draining:
            proto.close()

    def connection_closed(self, proto: DownstreamProtocol) -> None:
        self.connections.discard(proto)

    def is_trusted(self, ip: str) -> bool:
        hit = self._trust_cache.get(ip)
        if hit is None:
            try:
                addr = ipaddress.ip_address(ip)
                hit = any(addr in net for net in self.trusted_ips)
            except ValueError:
                hit = False
            if len(self._trust_cache) > 10000:
                self._trust_cache.clear()
            self._trust_cache[ip] = hit
        return hit

    def new_request_id(self) -> str:
        """32 random hex digits (Kong's X-Kong-Request-Id). One getrandom() call makes 256:
        every request needs one, and a syscall per request costs more than the slicing."""
        ids = self._request_ids
        if not ids:
            # (one regex pass cuts the 256 ids in C: a comprehension of slices cost ~12
            # bytecodes a request)
            ids += ID_CUT.findall(os.urandom(16 * REQUEST_IDS_PER_READ).hex())
        return ids.pop()

    # -- config -----------------------------------------------------------------------------
    def swap(self, config: Config) -> None:
        """Compile `config` and serve it from the next request on. Raises if it does not
        compile, leaving the current snapshot in place."""
        certificates = self._certificates(config, set(self.certificates))
        self.snapshot = Snapshot(config, self.resolver, self.settings, self.plugin_state,
                                 previous=self.snapshot)
        self.certificates = certificates

    def _certificates(self, config: Config, variants: set[bool]) -> dict[bool, Certificates]:
        if self.tls is None:
            return {}
        out = {}
        for http2 in variants:
            old = self.certificates.get(http2)
            out[http2] = Certificates(config.entities, self.tls, http2,
                                      old.by_cert if old is not None else {})
        return out

    # -- time -------------------------------------------------------------------------------
    def tick(self) -> None:
        """1 Hz: refresh the Date header, age out idle connections."""
        self.date = formatdate(time.time(), usegmt=True).encode()
        self.pool.sweep()
        now = self.loop.time()
        for proto in list(self.connections):
            if proto.current is None and not proto.pipeline:
                limit = CLIENT_HEADER_TIMEOUT if proto.parsing is None else KEEPALIVE_TIMEOUT
                if now - proto.last_active > limit:
                    proto.close()

    def active_requests(self) -> int:
        return sum(1 for p in self.connections if p.current is not None)


class Worker:
    """Listeners + state for one worker process (or one in-process server in tests)."""

    def __init__(self, settings: Settings, config: Config,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.get_event_loop()
        self.state = ServerState(settings, config, self.loop)
        self.settings = settings
        self.servers: list[asyncio.AbstractServer] = []
        self.sockets: list[socket.socket] = []
        self._ticker: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        state = self.state
        for listen in self.settings.proxy_listen:
            ctx = None
            if listen.ssl:
                assert state.tls is not None
                ctx = server_context(state.tls, listen.http2)
                http2 = listen.http2
                install_sni_callback(ctx, lambda h=http2: state.certificates[h])
            sock = bind_listener(listen)
            self.sockets.append(sock)
            port = sock.getsockname()[1]
            scheme = "https" if listen.ssl else "http"
            server = await self.loop.create_server(
                self._factory(port, scheme), sock=sock, backlog=1024, ssl=ctx)
            self.servers.append(server)
        self._schedule_tick()

    def _factory(self, port: int, scheme: str) -> Callable[[], DownstreamProtocol]:
        state = self.state
        return lambda: DownstreamProtocol(state, port, scheme)

    def ports(self) -> list[int]:
        return [s.getsockname()[1] for s in self.sockets]

    def _schedule_tick(self) -> None:
        self._ticker = self.loop.call_later(1.0, self._on_tick)

    def _on_tick(self) -> None:
        self.state.tick()
        self._schedule_tick()

    async def drain(self, grace: float) -> bool:
        """Stop accepting, let in-flight requests finish (responses carry `Connection:
        close`), close idle connections; True if everything finished within `grace`."""
        st = self.state
        st.draining = True
        for server in self.servers:
            server.close()
        deadline = self.loop.time() + grace
        while True:
            now = self.loop.time()
            for proto in list(st.connections):
                # A busy keep-alive client is idle only for an instant between two requests:
                # closing it then races its next request. Leave it DRAIN_IDLE to send that
                # request, which is answered with `Connection: close`.
                if proto.idle() and now - proto.last_active >= DRAIN_IDLE:
                    proto.close()
            if not st.connections or self.loop.time() >= deadline:
                break
            await asyncio.sleep(0.05)
        clean = not st.connections
        for proto in list(st.connections):
            proto.close()
        await self.close()
        return clean

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        for server in self.servers:
            server.close()
        self.state.pool.close()
        await self.state.resolver.close()
        if self.state.access_log is not None:
            self.state.access_log.close()


def bind_listener(listen: Listen) -> socket.socket:
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if listen.reuseport and hasattr(socket, "SO_REUSEPORT"):
        # Every worker binds its own socket; the kernel spreads connections between them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((listen.host, listen.port))
    sock.setblocking(False)
    return sock
