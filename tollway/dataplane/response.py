"""Responses to the client: the upstream's head rewritten (§2.9), and local replies (§2.12).

A mixin of `Exchange`. Plugins with a `response` phase get the headers as a `HeaderList`;
without them (no response phase, or only `response_headers` ones that set headers) the head
is serialised in one pass, with the plugins' headers appended.
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING

from tollway.dataplane import local_reply
from tollway.dataplane.exchange_fields import ExchangeFields
from tollway.dataplane.http import STATUS_LINES, VIA_VALUE, status_line
from tollway.dataplane.request_head import H_XFHOST, NAME_MAX
from tollway.plugins.base import (
    HEAD_CODES,
    HEAD_CODES_RAW,
    NAME_BIT,
    NAME_BITS_MAX,
    R_NAMED,
    HeaderList,
    HeaderNames,
    ResponseHeader,
    ResponseItem,
    expand,
    name_bits,
)

# Response headers the pass over the upstream's headers treats specially (§2.9); R_PLAIN
# (0, false) is any other name, forwarded as it is.
R_PLAIN, R_CLEN, R_DATE, R_SERVER, R_VIA, R_TENC, R_UPGRADE, R_HOP = range(8)
RESPONSE_SPECIAL: dict[bytes, int] = {
    b"content-length": R_CLEN, b"date": R_DATE, b"server": R_SERVER, b"via": R_VIA,
    b"transfer-encoding": R_TENC, b"connection": R_UPGRADE, b"upgrade": R_UPGRADE,
    b"keep-alive": R_HOP, b"proxy-connection": R_HOP, b"proxy": R_HOP, b"te": R_HOP,
    b"trailer": R_HOP, b"proxy-authenticate": R_HOP,
}
# The same names as a set, for `isdisjoint`: against a dict it walks all of the dict's
# keys (160 ns for rate-limiting's block), against a set only the smaller side (65 ns).
SPECIAL_NAMES = frozenset(RESPONSE_SPECIAL)


SPECIAL_MASK = name_bits(SPECIAL_NAMES)
# (not given a name bit: that would make every upstream Content-Type a name plugins may set)
L_CONTENT_TYPE = b"content-type"
# One lookup per upstream header finds both: a special name's code, or R_NAMED for a name
# a plugin block may set (plugins/base.py registers those); the special names keep theirs.
HEAD_CODES.update(RESPONSE_SPECIAL)
RAW_CODES_MAX = 1024  # upstreams send a handful of spellings; a flood just refills it
SHARED_BIT = 1 << NAME_BITS_MAX  # names past the limit share it: it names no one name
LINES = itemgetter(1)  # a block's lines


def raw_code(name: bytes) -> int:
    """The head code of an upstream header name as spelt, learnt into HEAD_CODES_RAW
    (unless it is longer than request_head.NAME_MAX)."""
    code = HEAD_CODES.get(name.lower(), R_PLAIN)
    if len(name) <= NAME_MAX:
        if len(HEAD_CODES_RAW) >= RAW_CODES_MAX:
            HEAD_CODES_RAW.clear()
        HEAD_CODES_RAW[name] = code
    return code


def replaced_names(blocks: list[ResponseItem]) -> frozenset[bytes]:
    """The names the blocks among `blocks` set (for a mask with the shared bit)."""
    return frozenset().union(*(b[0] for b in blocks if b[0].__class__ is HeaderNames))


# Headers exit_raw never replays: it frames the body itself.
RAW_DROPPED = frozenset((b"content-length", b"transfer-encoding", b"connection",
                         b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade"))


def resolve_extra(extra: list[ResponseItem]) -> tuple[list[tuple[bytes, bytes]], set[bytes]]:
    """The headers plugins set or added, in call order, without those a later set of the
    same name overrides; and the names whose upstream values go (every set name)."""
    replaced: set[bytes] = set()
    pairs: list[tuple[bytes, bytes]] = []
    entries: list[ResponseHeader] = expand(extra)
    for name, value, replace, ln, _ in reversed(entries):
        if ln in replaced:
            continue
        if replace:
            replaced.add(ln)
        if value is not None:
            pairs.append((name, value))
    pairs.reverse()
    return pairs, replaced


class ResponseWriter(ExchangeFields):

    resp_extra: list[ResponseItem] | None
    client_method: bytes | None
    held: bytes | None  # a response head not written yet (see on_response_head)

    if TYPE_CHECKING:
        # Provided by Exchange and PluginAPI. Declared for the type checker only: a stub
        # method here would shadow the real one in the MRO.
        def _finish(self, abort: bool = False) -> None: ...
        def run_response(self, headers: HeaderList | None) -> None: ...
        def run_body(self, chunk: bytes, last: bool) -> bytes: ...

    def _https_redirect(self, code: int) -> None:
        if code == 426:
            self.reply_error(426, local_reply.USE_HTTPS,
                             extra=[b"Connection: Upgrade\r\nUpgrade: TLS/1.2, HTTP/1.1\r\n"])
            return
        host = self.forwarded.get(H_XFHOST) if self.proto.trusted else None
        location = b"https://" + (host or self.host.split(b":", 1)[0]) + self.url
        self.reply(code, b"", None, extra=[b"Location: " + location + b"\r\n"])

    def on_response_head(self, status: int, headers: list[tuple[bytes, bytes]],
                         no_body: bool) -> bool:
        """Send the response head downstream. Returns whether the upstream framed the body
        (Content-Length or chunked); if not, the upstream's close ends it."""
        if self.done:
            return True
        now = self.t_response = self.loop.time()
        st = self.state
        self.response_started = True
        self.status = status
        chain = self.chain
        if chain.response:
            if chain.response_light:
                chain.response_run(self)  # plugins that only set headers: into resp_extra
            else:
                # Slow path, for plugins that read the upstream's headers: they see and
                # edit them before tollway applies its own rules below.
                hl = HeaderList(list(headers))
                self.apply_response_headers(hl)
                headers = hl.items
        # Headers plugins set (access or response_headers): the upstream's values of a
        # replaced name are dropped in the pass below, and the plugins' lines follow.
        extra = self.resp_extra
        rmask = 0  # the name bits of what plugin blocks set: the upstream's values go
        tail: list[bytes] | None = None
        if extra:
            # The usual case: only blocks, none overriding a later one's header nor
            # setting a special one: their lines as they are, checked in name bits; the
            # upstream's headers of the names they set are found by their bits below.
            mask = SPECIAL_MASK
            for item in reversed(extra):
                names = item[0]
                if names.__class__ is not HeaderNames:  # (a single header: its name)
                    break
                if names.lmask & mask:
                    break
                mask |= names.mask
            else:
                tail = list(map(LINES, extra))  # (in C: cheaper than appending in the loop)
                if mask < SHARED_BIT:
                    rmask = mask
                else:  # a name without a bit of its own: by name (rare)
                    named = replaced_names(extra)
                    headers = [h for h in headers if h[0].lower() not in named]
                extra = None
        if extra:
            # Newest first: an entry is dropped when a later set of its name overrides it.
            replaced: set[bytes] = set()
            tail = []
            for item in reversed(extra):
                names = item[0]
                if names.__class__ is HeaderNames:  # a block
                    lines = names.lines  # (with the names of added lines)
                    if lines.isdisjoint(replaced) and lines.isdisjoint(SPECIAL_NAMES):
                        replaced |= names
                        tail.append(item[1])  # type: ignore[arg-type]
                        continue
                    ln = b""  # overlaps a later header, or a special one: resolve below
                else:
                    _, _, replace, ln, line = item  # type: ignore[misc]
                    if ln in replaced:
                        continue
                if not ln or ln in SPECIAL_NAMES:
                    # rare: a plugin set Date, Server, Content-Length... (the rules below
                    # apply to its header as to the upstream's), or a block overlaps
                    pairs, gone = resolve_extra(self.resp_extra or [])
                    headers = [h for h in headers if h[0].lower() not in gone] + pairs
                    tail = None
                    break
                if replace:
                    replaced.add(ln)
                if line is not None:
                    tail.append(line)
            else:
                tail.reverse()
                if replaced:
                    headers = [h for h in headers if h[0].lower() not in replaced]
        parts = [STATUS_LINES.get(status) or status_line(status)]
        via = b""
        has_server = has_date = framed = False
        clen: bytes | None = None
        upgrade = status == 101
        codes = HEAD_CODES_RAW
        for name, value in headers:
            code = codes.get(name)
            if code is None:
                code = raw_code(name)
            if not code:  # R_PLAIN
                # (four parts, not the line: the join takes them for less than the two
                # concatenations that would make the line)
                parts += (name, b": ", value, b"\r\n")
            elif code == R_CLEN:
                clen = value
                framed = True
            elif code == R_DATE:
                has_date = True
                parts += (name, b": ", value, b"\r\n")
            elif code == R_SERVER:
                has_server = True
                parts += (name, b": ", value, b"\r\n")
            elif code == R_VIA:
                via = value
            elif code == R_TENC:
                framed = True
            elif code == R_NAMED:  # a name plugins may set: kept unless a block set it
                if not (rmask and rmask & NAME_BIT.get(name.lower(), 0)):
                    parts += (name, b": ", value, b"\r\n")
            elif upgrade and code == R_UPGRADE:
                parts += (name, b": ", value, b"\r\n")
            # (R_HOP, and Connection/Upgrade without an upgrade: dropped)
        if tail is not None:
            parts += tail
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
            self.proto.write(b"".join(parts))  # 101: the tunnel's bytes follow unframed
            return framed or no_body
        # Held, not written: the body usually arrived in the same read, and head and body
        # then leave in one writev as nginx sends them; one syscall and one segment fewer
        # per request. Whatever is still held when the read is consumed is flushed then
        # (UpstreamConnection.data_received), so a slow body never delays the head.
        self.held = b"".join(parts)
        return framed or no_body

    def flush_held(self) -> None:
        held = self.held
        if held is not None:
            self.held = None
            self.proto.write(held)

    def on_response_body(self, data: bytes) -> None:
        if self.done:
            return
        if self.chain.body:
            data = self.run_body(data, False)
            if not data:
                return
        self.resp_size += len(data)
        held = self.held
        if held is not None:
            self.held = None
            if self.chunked_out:
                self.proto.writelines([held, b"%x\r\n" % len(data), data, b"\r\n"])
            else:
                self.proto.writelines([held, data])
        elif self.chunked_out:
            self.proto.writelines([b"%x\r\n" % len(data), data, b"\r\n"])
        else:
            self.proto.write(data)

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

    def apply_response_headers(self, hl: HeaderList) -> None:
        """Headers plugins set during access, then the response-phase plugins.

        One pass, not one list rebuild per header: set_response_header already dropped
        earlier plugin values of the same name, so dropping the upstream's values of every
        replaced name and appending the plugin headers in order gives the same result."""
        extra = self.resp_extra
        if extra:
            pairs, replaced = resolve_extra(extra)
            items = hl.items
            if replaced:
                items = [(n, v) for n, v in items if n.lower() not in replaced]
            hl.items = items + pairs
            self.resp_extra = None  # applied: response_headers plugins start afresh
        if self.chain.response:
            self.run_response(hl)

    def reply(self, status: int, body: bytes, ctype: bytes | None, *,
              extra: list[bytes] | None = None, empty_body_ok: bool = False) -> None:
        if self.done:
            return
        st = self.state
        self.status = status
        if not self.req_complete:
            self.keep_alive = False  # the unread body would be parsed as the next request
        keep = self.keep_alive and not st.draining
        self.keep_alive = keep
        lines = list(extra or ())
        chain = self.chain
        if chain.response or self.resp_extra:
            hl: HeaderList | None = None
            if chain.response and not chain.response_light:
                hl = HeaderList([(b"Content-Type", ctype)] if ctype is not None else [])
                self.apply_response_headers(hl)
            else:
                # Plugins that only set headers (a 401 or 429 of the seed's chain): their
                # blocks' lines as they are, as on_response_head sends them; the general
                # resolution only when a block overlaps another or sets a framing header.
                if chain.response:
                    chain.response_run(self)
                extra_items = self.resp_extra
                if extra_items:
                    # blocks as they are unless one overlaps another, sets a special name
                    # or the reply's own Content-Type
                    mask = SPECIAL_MASK
                    for item in reversed(extra_items):
                        names = item[0]
                        if (names.__class__ is not HeaderNames or names.lmask & mask
                                or L_CONTENT_TYPE in names.lines):
                            hl = HeaderList([(b"Content-Type", ctype)]
                                            if ctype is not None else [])
                            pairs, replaced = resolve_extra(extra_items)
                            if replaced:
                                hl.items = [(n, v) for n, v in hl.items
                                            if n.lower() not in replaced]
                            hl.items += pairs
                            break
                        mask |= names.mask
                    else:
                        lines += map(LINES, extra_items)
                    self.resp_extra = None
            if hl is not None:
                ctype = None
                for name, value in hl.items:
                    lname = name.lower()
                    if lname == b"content-type":
                        ctype = value
                    elif lname != b"content-length":
                        lines.append(name + b": " + value + b"\r\n")
        if self.chain.body:
            body = self.run_body(body, True)  # Kong runs body_filter on local replies too
        head_only = (self.client_method or self.method) == b"HEAD"
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
            no_body = status in (204, 304) or 100 <= status < 200
            head = [status_line(status), b"Date: ", st.date, b"\r\n",
                    b"" if no_body else b"Content-Length: %d\r\n" % len(body), *lines,
                    b"" if keep else b"Connection: close\r\n", b"\r\n"]
            if body and not no_body and not head_only:
                head.append(body)
                self.resp_size = len(body)
            self.proto.write(b"".join(head))
        else:
            self.resp_size = len(body)
            self.proto.write(local_reply.build(status, ctype, body, date=st.date, extra=lines,
                                               keep_alive=keep,
                                               head_only=head_only))
        self._finish()

    def reply_raw(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """req.exit_raw: these headers as given (bar framing and hop-by-hop ones), then
        Date / Server / request id per the `headers` setting, and Content-Length."""
        if self.done:
            return
        st = self.state
        self.status = status
        if not self.req_complete:
            self.keep_alive = False
        keep = self.keep_alive = self.keep_alive and not st.draining
        items = [(n, v) for n, v in headers if n.lower() not in RAW_DROPPED]
        extra = self.resp_extra
        if extra:
            given = {n.lower() for n, _ in items}
            self.resp_extra = [e for e in expand(extra) if e[3] not in given]
        if self.chain.response or self.resp_extra:
            hl = HeaderList(items)
            self.apply_response_headers(hl)
            items = [(n, v) for n, v in hl.items if n.lower() not in RAW_DROPPED]
        if self.chain.body:
            body = self.run_body(body, True)
        names = {n.lower() for n, _ in items}
        parts = [status_line(status)]
        parts += [n + b": " + v + b"\r\n" for n, v in items]
        if b"date" not in names:
            parts += (b"Date: ", st.date, b"\r\n")
        flags = st.header_flags
        if flags.server and b"server" not in names:
            parts.append(local_reply.SERVER_LINE)
        if flags.response_latency:
            parts.append(b"X-Tollway-Response-Latency: %d\r\n"
                         % int((self.loop.time() - self.t_start) * 1000))
        if flags.request_id and self.request_id:
            parts.append(b"X-Tollway-Request-Id: " + self.request_id.encode() + b"\r\n")
        no_body = status in (204, 304) or 100 <= status < 200
        if not no_body:
            parts.append(b"Content-Length: %d\r\n" % len(body))
        if not keep:
            parts.append(b"Connection: close\r\n")
        elif not self.http11:
            parts.append(b"Connection: keep-alive\r\n")
        parts.append(b"\r\n")
        if body and not no_body and (self.client_method or self.method) != b"HEAD":
            parts.append(body)
            self.resp_size = len(body)
        self.proto.write(b"".join(parts))
        self._finish()
