"""The request head: one pass over the client's headers, and the head sent upstream (§2.8).

A mixin of `Exchange`: split out so the orchestrator stays readable. Everything here runs once
per request; per-connection constants (X-Forwarded-Proto/Port, X-Real-IP for untrusted peers)
are precomputed on the connection.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from typing import TYPE_CHECKING, Any

from tollway.dataplane.exchange_fields import ExchangeFields
from tollway.dataplane.plugin_api import OVERLAY_LINES

if TYPE_CHECKING:
    from tollway.dataplane.snapshot import ServiceSpec

# Request headers the single pass over the client's headers treats specially.
H_HOST, H_CONNECTION, H_UPGRADE, H_EXPECT, H_TE, H_XFF, H_REPLACED, H_DROP = range(8)
# (Proxy-Connection is dropped too, and noted: llhttp reads it as Connection; see
# Exchange.__init__ on the HTTP version)
H_PROXY_CONNECTION, H_CLEN, H_TENC = range(8, 11)
H_XFPROTO, H_XFHOST, H_XFPORT, H_XFPATH, H_XFPREFIX = range(11, 16)
# Forwarded as they are, and remembered for error-body negotiation: negative codes, so the
# one lookup per header finds them and a header that is none of these costs no second one.
H_ACCEPT, H_CTYPE = -1, -2
SPECIAL: dict[bytes, int] = {
    b"host": H_HOST, b"connection": H_CONNECTION, b"upgrade": H_UPGRADE, b"expect": H_EXPECT,
    b"te": H_TE, b"x-forwarded-for": H_XFF, b"x-real-ip": H_REPLACED,
    b"keep-alive": H_DROP, b"proxy-connection": H_PROXY_CONNECTION, b"proxy": H_DROP,
    b"trailer": H_DROP,
    b"content-length": H_CLEN, b"transfer-encoding": H_TENC,
    b"x-forwarded-proto": H_XFPROTO, b"x-forwarded-host": H_XFHOST,
    b"x-forwarded-port": H_XFPORT, b"x-forwarded-path": H_XFPATH,
    b"x-forwarded-prefix": H_XFPREFIX,
    b"accept": H_ACCEPT, b"content-type": H_CTYPE,
}

# Per spelling of a request header name, as clients send it: its lower-case form and its
# SPECIAL code (None: forwarded as it is). Clients send a handful of spellings, so one
# lookup per header replaces a lower() and a lookup; a client inventing names only makes
# it refill (bounded).
REQUEST_NAMES: dict[bytes, tuple[bytes, int | None]] = {}
REQUEST_NAMES_MAX = 1024
NAME_MAX = 128  # longer names are looked up the long way, never kept


def request_name(name: bytes) -> tuple[bytes, int | None]:
    """A request header name's entry in REQUEST_NAMES, learnt now."""
    ln = name.lower()
    entry = (ln, SPECIAL.get(ln))
    if len(name) <= NAME_MAX:
        if len(REQUEST_NAMES) >= REQUEST_NAMES_MAX:
            REQUEST_NAMES.clear()
        REQUEST_NAMES[name] = entry
    return entry


def drop_lines(parts: list[bytes], names: Container[bytes]) -> list[bytes]:
    """Forwarded header lines (four parts each: name, ": ", value, CRLF) without those
    whose lower-case name is in `names`."""
    kept: list[bytes] = []
    for i in range(0, len(parts), 4):
        if parts[i].lower() not in names:
            kept += parts[i:i + 4]
    return kept


# X-Forwarded-Host from the request's Host (port dropped, lower-cased) by Host value: clients
# send a handful of Host values, and a lookup costs less than split + lower per request.
FORWARDED_HOSTS: dict[bytes, bytes] = {}
FORWARDED_HOSTS_MAX = 1024


def forwarded_host(host: bytes) -> bytes:
    """nginx's $host: the Host header without its port, lower-cased ([::1] for an IPv6
    literal, not the "[" a split at the first colon leaves)."""
    if host[:1] == b"[":
        end = host.find(b"]")
        value = host[:end + 1].lower() if end > 0 else host.lower()
    else:
        value = host.split(b":", 1)[0].lower()
    if len(FORWARDED_HOSTS) >= FORWARDED_HOSTS_MAX:
        FORWARDED_HOSTS.clear()
    FORWARDED_HOSTS[host] = value
    return value


class RequestHead(ExchangeFields):

    def _scan_headers(self) -> bool:
        """One pass over the client's headers: remember what tollway needs, keep the rest in
        `fwd` ready to be sent upstream, drop hop-by-hop and replaced headers (§2.8).
        True if the request has a Connection or Proxy-Connection header."""
        fwd = self.fwd
        names = REQUEST_NAMES
        conn_tokens: list[bytes] = []
        proxy_connection = False
        headers = self.headers
        # raw_header's map, built here where each name's lower-case form is at hand (a
        # second pass cost a comprehension and a lower() per header)
        raw: dict[bytes, bytes] | None = {} if self.snapshot.header_map else None
        for name, value in headers:
            entry = names.get(name)
            if entry is None:
                entry = request_name(name)
            ln, code = entry
            if raw is not None:
                raw[ln] = value
            if code is None:
                fwd += (name, b": ", value, b"\r\n")  # (see `fwd` in ExchangeFields)
                continue
            if code < 0:
                fwd += (name, b": ", value, b"\r\n")
                if code == H_ACCEPT:
                    self.accept = value
                else:
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
            elif code == H_PROXY_CONNECTION:
                proxy_connection = True
        if raw is not None:
            if len(raw) != len(headers):  # a repeated name: the first value is the one
                raw = {n.lower(): v for n, v in reversed(headers)}
            self._raw = raw
        if conn_tokens:
            self.upgrade = self.upgrade and b"upgrade" in conn_tokens
            extra = {t for t in conn_tokens if t not in (b"keep-alive", b"close", b"upgrade")}
            if extra:  # headers the client named hop-by-hop (RFC 9110 §7.6.1)
                self.fwd = drop_lines(fwd, extra)
            return True
        self.upgrade = False
        return proxy_connection

    def _preflight_route(self, host: str | None, path: str,
                         headers: dict[str, list[str]] | None) -> Any:
        """DECISIONS.md #1: a CORS preflight that matches no route is routed as if its
        method were the one it asks for, so that route's cors plugin can answer it."""
        wanted = origin = None
        for name, value in self.headers:
            lname = name.lower()
            if lname == b"access-control-request-method":
                wanted = value.strip().decode("latin-1")
            elif lname == b"origin":
                origin = value
        if not wanted or origin is None:
            return None
        return self.snapshot.router.match(wanted, host, path, headers, self.proto.scheme,
                                          self.proto.sni)

    def _absolute_form(self, raw_path: bytes) -> bytes:
        # `GET http://host/path HTTP/1.1`: the authority replaces Host (RFC 9112 §3.2.2).
        scheme_end = raw_path.find(b"://")
        if scheme_end < 0:
            return b"/" + raw_path
        rest = raw_path[scheme_end + 3:]
        slash = rest.find(b"/")
        self.host = rest if slash < 0 else rest[:slash]
        return b"/" if slash < 0 else rest[slash:]

    def _build_head(self, m: Any, svc: ServiceSpec, raw_path: bytes, qpos: int) -> bytes:
        proto = self.proto
        uri = self.path_override or m.upstream_path_bytes
        if self.query_override is not None:
            if self.query_override:
                uri += b"?" + self.query_override
        elif qpos >= 0:
            uri += self.url[qpos:]
        host = self.host if (m.route["preserve_host"] and self.host) else svc.host_header
        fwd = self.fwd
        overlay = self.req_overlay
        added: Iterable[bytes] | None = None  # the header lines plugins set
        if overlay:
            # Plugins changed request headers: drop the client's values they replace —
            # usually there are none (X-Consumer-* and the like), so look before filtering.
            raw = self._raw  # the lower-cased request headers, when a plugin asked for one
            if (not overlay.keys().isdisjoint(raw) if raw is not None
                    else any(name.lower() in overlay for name, _ in self.headers)):
                fwd = drop_lines(fwd, overlay)
            host_entry = overlay.get(b"host")
            if host_entry is None:  # the usual case: every entry's lines, taken in C
                added = map(OVERLAY_LINES, overlay.values())
            else:  # a plugin set Host: it goes in the request line's Host, not twice
                host = host_entry[1][0] if host_entry[1] else host
                added = [e[2] for n, e in overlay.items() if n != b"host"]
        parts = [self.method, b" ", uri, b" HTTP/1.1\r\nHost: ", host, b"\r\n"]
        parts += fwd
        if added is not None:
            parts += added
        fw = self.forwarded
        client = proto.client_ip_bytes
        xff = fw.get(H_XFF)
        if xff:
            parts += (b"X-Forwarded-For: ", xff, b", ", client, b"\r\n")
        else:  # nginx's $remote_addr: the real-IP-processed address for a trusted peer
            parts += (b"X-Forwarded-For: ", self._real_ip() if proto.trusted else client,
                      b"\r\n")
        prefix = m.prefix_bytes
        host_only = FORWARDED_HOSTS.get(self.host)  # nginx's $host, by Host value
        if host_only is None:
            host_only = forwarded_host(self.host)
        if not proto.trusted:
            # Common case: nothing the client says about forwarding is believed.
            parts += (proto.static_forwarded, b"X-Forwarded-Host: ", host_only,
                      b"\r\nX-Forwarded-Path: ", raw_path, b"\r\n")
            if prefix:
                parts += (b"X-Forwarded-Prefix: ", prefix, b"\r\n")
        else:
            parts += (b"X-Forwarded-Proto: ", fw.get(H_XFPROTO, proto.scheme_bytes),
                      b"\r\nX-Forwarded-Host: ", fw.get(H_XFHOST, host_only),
                      b"\r\nX-Forwarded-Port: ", fw.get(H_XFPORT, proto.port_bytes),
                      b"\r\nX-Forwarded-Path: ", fw.get(H_XFPATH, raw_path), b"\r\n")
            fprefix = fw.get(H_XFPREFIX)
            if fprefix is None and prefix:
                fprefix = prefix
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
