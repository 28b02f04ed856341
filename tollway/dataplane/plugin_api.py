"""What a plugin sees of a request — Kong's PDK in Python terms — and the phase runners.

A mixin of `Exchange`. Plugins get the exchange itself as `req`:

    req.method / req.path / req.query_string / req.query()   the request as received
    req.get_header(name) / req.get_headers(name)            request headers (case-insensitive)
    req.set_header / add_header / clear_header               headers sent upstream
    req.set_upstream_path(path) / set_upstream_query(qs)     rewrite what is sent upstream
    req.set_method(method) / req.original_method             the method sent upstream
    req.body / req.set_body(data)                            the request body (buffered
                                                             routes only: buffer_request_body)
    req.limit_body(max_bytes, status, message)               a body-size limit while streaming
    req.set_response_header / add_response_header            headers added to the response
    req.exit(status, body, headers)                          kong.response.exit
    req.exit_raw(status, [(name, value)], body)              send exactly these headers
    req.error(status, message, headers)                      kong.response.error
    req.authenticate(consumer, credential, identifier)       kong.client.authenticate + headers
    req.suspend()                                            access waits for a callback
    req.client_ip, req.route, req.service_entity, req.consumer, req.credential, req.ctx

Everything is lazy: a request on a route without plugins never builds any of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs

from tollway.dataplane import local_reply
from tollway.dataplane.suspended import Suspended
from tollway.plugins.base import HeaderList, ResponseItem, expand, response_header
from tollway.plugins.chain import Chain, is_light_response

if TYPE_CHECKING:
    from tollway.dataplane.protocol import DownstreamProtocol
    from tollway.dataplane.server import ServerState

log = logging.getLogger("tollway.plugins")

JSON_CTYPE = b"application/json; charset=utf-8"
CONSUMER_HEADERS = (b"x-consumer-id", b"x-consumer-custom-id", b"x-consumer-username",
                    b"x-credential-identifier", b"x-anonymous-consumer")
# Upstream request headers plugins set, by lower-case name: (name, values, the header lines
# as sent). Entries are immutable (cached ones are shared by requests): replace, never edit.
OverlayEntry = tuple[bytes, tuple[bytes, ...], bytes]
Overlay = dict[bytes, OverlayEntry]
CLEARED_CONSUMER_HEADERS: Overlay = {h: (h, (), b"") for h in CONSUMER_HEADERS}
OVERLAY_LINES = itemgetter(2)  # an OverlayEntry's lines (b"" for a cleared header)


def overlay_entry(name: bytes, values: tuple[bytes, ...]) -> OverlayEntry:
    return (name, values, b"".join(name + b": " + v + b"\r\n" for v in values))


_CONSUMER_OVERLAYS: dict[tuple[int, str | None, bool],
                         tuple[dict[str, Any] | None, Overlay]] = {}


def consumer_overlay(consumer: dict[str, Any] | None, identifier: str | None,
                     anonymous: bool) -> Overlay:
    """The upstream headers kong.client.authenticate sets: every consumer header, cleared
    unless it applies. Built once per consumer dict (consumers are immutable parts of a
    snapshot) and identifier; callers must not mutate the result."""
    key = (id(consumer), identifier, anonymous)
    hit = _CONSUMER_OVERLAYS.get(key)
    if hit is not None and hit[0] is consumer:
        return hit[1]
    ov: Overlay = dict(CLEARED_CONSUMER_HEADERS)
    if consumer is not None:
        ov[b"x-consumer-id"] = overlay_entry(b"X-Consumer-ID", (_b(consumer["id"]),))
        if consumer.get("custom_id"):
            ov[b"x-consumer-custom-id"] = overlay_entry(b"X-Consumer-Custom-ID",
                                                        (_b(consumer["custom_id"]),))
        if consumer.get("username"):
            ov[b"x-consumer-username"] = overlay_entry(b"X-Consumer-Username",
                                                       (_b(consumer["username"]),))
    if anonymous:
        ov[b"x-anonymous-consumer"] = overlay_entry(b"X-Anonymous-Consumer", (b"true",))
    elif identifier:
        ov[b"x-credential-identifier"] = overlay_entry(b"X-Credential-Identifier",
                                                       (_b(identifier),))
    if len(_CONSUMER_OVERLAYS) > 100_000:
        _CONSUMER_OVERLAYS.clear()
    _CONSUMER_OVERLAYS[key] = (consumer, ov)
    return ov


def _b(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1", "replace")


class PluginAPI:
    # Owned by Exchange; declared for the type checker.
    proto: DownstreamProtocol
    state: ServerState
    loop: asyncio.AbstractEventLoop
    method: bytes
    url: bytes
    version: str
    headers: list[tuple[bytes, bytes]]
    match: Any
    done: bool
    keep_alive: bool
    status: int
    response_started: bool
    has_body: bool
    req_complete: bool
    req_size: int
    req_body: bytes | None
    body_hook: bool
    body_max: int
    body_max_reply: tuple[int, str | None]

    # Plugin-facing state. These are slots of Exchange, set in its __init__ (EMPTY, None):
    chain: Chain
    consumer: dict[str, Any] | None
    credential: dict[str, Any] | None
    req_overlay: Overlay | None
    # (name, value, replace, lower-case name): replace=True is set_response_header (it
    # replaces the upstream's values of that header), False add_response_header
    resp_extra: list[ResponseItem] | None
    _ctx: dict[str, Any] | None
    _raw: dict[bytes, bytes] | None
    # Rarely set: class-level defaults, so requests that never set them pay nothing.
    path_override: bytes | None = None
    query_override: bytes | None = None
    _hmap: dict[str, list[str]] | None = None
    client_method: bytes | None = None  # set when a plugin changed the upstream method

    # -- reading the request ----------------------------------------------------------------
    # Per-request storage for plugins (kong.ctx.plugin): use `req.ctx[self.name]`. Set to a
    # fresh dict by Exchange._start when the request's chain has plugins (a slot, not a
    # lazy property: a property is a Python call per read, three a request in the seed
    # chain). `_ctx` is the same dict, or None for a request no plugin ran on.
    ctx: dict[str, Any]

    @property
    def method_str(self) -> str:
        return self.method.decode("latin-1")

    @property
    def http_version(self) -> float:
        """kong.request.get_http_version: 1.0, 1.1 or 2.0."""
        return float(self.version)

    @property
    def original_method(self) -> str:
        """The method the client sent, whatever set_method did."""
        return (self.client_method or self.method).decode("latin-1")

    @property
    def path(self) -> str:
        """The request path as received, without the query string."""
        raw = self.url.split(b"?", 1)[0]
        return raw.decode("utf-8", "surrogateescape")

    @property
    def query_string(self) -> str:
        _, sep, qs = self.url.partition(b"?")
        return qs.decode("latin-1") if sep else ""

    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.query_string, keep_blank_values=True)

    def _headers_map(self) -> dict[str, list[str]]:
        hmap = self._hmap
        if hmap is None:
            hmap = {}
            for name, value in self.headers:
                hmap.setdefault(name.decode("latin-1").lower(), []).append(
                    value.decode("latin-1"))
            self._hmap = hmap
        return hmap

    # Reading request headers sees what plugins set, added or cleared before (as Kong's
    # kong.request.get_header sees kong.service.request.set_header: both act on nginx's
    # request headers): an overlay entry, when there is one, is the header's value now.

    def raw_header(self, lname: bytes) -> bytes | None:
        """The first value of a request header by its lower-case name as bytes: the
        hot-path form of get_header (one dict per request, shared by every plugin that
        asks)."""
        overlay = self.req_overlay
        if overlay is not None:
            entry = overlay.get(lname)
            if entry is not None:
                return entry[1][0] if entry[1] else None
        raw = self._raw
        if raw is None:
            # reversed: the first of repeated headers wins (a dict(zip(map(...))) form
            # measured ~5k instructions a request more under callgrind than this)
            raw = self._raw = {n.lower(): v for n, v in reversed(self.headers)}
        return raw.get(lname)

    def get_header(self, name: str) -> str | None:
        values = self.get_headers(name)
        return values[0] if values else None

    def get_headers(self, name: str) -> list[str]:
        lname = name.lower()
        overlay = self.req_overlay
        if overlay is not None:
            entry = overlay.get(lname.encode("latin-1", "replace"))
            if entry is not None:
                return [v.decode("latin-1") for v in entry[1]]
        return list(self._headers_map().get(lname, ()))

    @property
    def client_ip(self) -> str:
        """The client address after real-IP processing (nginx's $remote_addr)."""
        if self.proto.trusted:
            ip: bytes = cast(Any, self)._real_ip()
            return ip.decode("latin-1")
        return self.proto.client_ip

    @property
    def route(self) -> dict[str, Any] | None:
        return self.match.route if self.match is not None else None

    @property
    def service_entity(self) -> dict[str, Any] | None:
        return self.match.service if self.match is not None else None

    # -- changing what goes upstream --------------------------------------------------------
    def _overlay(self) -> Overlay:
        if self.req_overlay is None:
            self.req_overlay = {}
        return self.req_overlay

    def set_header(self, name: str | bytes, value: str | bytes) -> None:
        n = name if name.__class__ is bytes else _b(name)
        v = value if value.__class__ is bytes else _b(value)
        overlay = self.req_overlay
        if overlay is None:
            overlay = self.req_overlay = {}
        overlay[n.lower()] = (n, (v,), n + b": " + v + b"\r\n")

    def add_header(self, name: str | bytes, value: str | bytes) -> None:
        n = _b(name)
        ov = self._overlay()
        existing = ov.get(n.lower())
        if existing is None:
            current = tuple(_b(v) for v in self.get_headers(n.decode("latin-1")))
            ov[n.lower()] = overlay_entry(n, (*current, _b(value)))
        else:
            ov[n.lower()] = overlay_entry(existing[0], (*existing[1], _b(value)))

    def clear_header(self, name: str | bytes) -> None:
        n = _b(name)
        self._overlay()[n.lower()] = (n, (), b"")

    def set_upstream_path(self, path: str) -> None:
        self.path_override = _b(path)

    def set_upstream_query(self, query: str) -> None:
        self.query_override = _b(query)

    def set_method(self, method: str | bytes) -> None:
        """kong.service.request.set_method: the method sent upstream (`req.method` then
        reads it; `req.original_method` keeps the client's)."""
        if self.client_method is None:
            self.client_method = self.method
        self.method = _b(method).upper()

    # -- the request body -------------------------------------------------------------------
    @property
    def body(self) -> bytes | None:
        """The whole request body, on routes that buffer it (a plugin with
        `buffer_request_body`); b"" for a request without a body; None when the body is
        being streamed and was not read."""
        if self.req_body is not None:
            return self.req_body
        return None if self.has_body else b""

    def set_body(self, data: bytes) -> None:
        """kong.service.request.set_body: replace the body sent upstream; it is then framed
        with `Content-Length: len(data)`. Only for a buffered (or absent) body."""
        if self.has_body and self.req_body is None:
            raise RuntimeError("set_body needs the request body buffered "
                               "(set buffer_request_body on the plugin)")
        cast(Any, self).set_buffered_body(bytes(data))

    def limit_body(self, max_bytes: int, status: int = 413, message: str | None = None) -> bool:
        """Answer `status` (kong.response.error with `message`, or nginx's reply without
        one) as soon as the request body passes `max_bytes`, while it streams. True when
        the body read so far is already over and the request was answered now."""
        if self.req_size > max_bytes:
            cast(Any, self).too_large(status, message)
            return True
        if not self.req_complete:
            self.body_max = max_bytes
            self.body_max_reply = (status, message)
            self.body_hook = True
        return False

    # -- the response -----------------------------------------------------------------------
    # Response headers are appended to resp_extra in call order; what a later set of the
    # same name overrides is resolved once, when the head is written (response.py).
    def set_response_header(self, name: str | bytes, value: str | bytes) -> None:
        entry = response_header(_b(name), _b(value))
        if self.resp_extra is None:
            self.resp_extra = [entry]
        else:
            self.resp_extra.append(entry)

    def add_response_header(self, name: str | bytes, value: str | bytes) -> None:
        entry = response_header(_b(name), _b(value), replace=False)
        if self.resp_extra is None:
            self.resp_extra = [entry]
        else:
            self.resp_extra.append(entry)

    def set_response_headers(self, entries: list[ResponseItem]) -> None:
        """Several response headers at once, built ahead by the plugin with
        `tollway.plugins.base.response_header(name, value, replace)`: replace=True is
        set_response_header, False add_response_header, a None value removes the header;
        or `HeaderBlock`s of already serialised headers. The list is copied."""
        if self.resp_extra is None:
            self.resp_extra = list(entries)
        else:
            self.resp_extra += entries

    def exit(self, status: int, body: Any = None,
             headers: dict[str, Any] | None = None) -> None:
        """kong.response.exit: a table body is JSON-encoded, a string sent as is; no
        request_id is added."""
        ctype: bytes | None = None
        if body is None:
            data = b""
        elif isinstance(body, (dict, list)):
            data = json.dumps(body, separators=(",", ":")).encode()
            ctype = JSON_CTYPE
        else:
            data = _b(body)
        for name, value in (headers or {}).items():
            if name.lower() == "content-type":
                ctype = _b(str(value[-1] if isinstance(value, list) else value))
            elif isinstance(value, list):
                # every value is sent: the first replaces, the others are added
                for i, v in enumerate(value):
                    if i == 0:
                        self.set_response_header(name, str(v))
                    else:
                        self.add_response_header(name, str(v))
            else:
                self.set_response_header(name, str(value))
        cast(Any, self).reply(status, data, ctype, empty_body_ok=True)

    def exit_raw(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """A local reply with exactly these headers, in this order and case (e.g. a cached
        response replayed), plus Content-Length and tollway's own Date / Server /
        request-id per the `headers` setting. Headers set earlier with set_response_header
        are kept unless `headers` has the same name; response-phase plugins then run."""
        cast(Any, self).reply_raw(status, headers, body)

    def error(self, status: int, message: str | None = None,
              headers: dict[str, Any] | None = None) -> None:
        """kong.response.error: Kong's templated body negotiated from Accept."""
        for name, value in (headers or {}).items():
            self.set_response_header(name, str(value))
        cast(Any, self).reply_error(status, message or local_reply.default_message(status))

    # -- consumers --------------------------------------------------------------------------
    def authenticate(self, consumer: dict[str, Any] | None, credential: dict[str, Any] | None,
                     identifier: str | None = None, anonymous: bool = False) -> None:
        """kong.client.authenticate, plus the upstream consumer headers auth plugins set:
        X-Consumer-ID / -Custom-ID / -Username, X-Credential-Identifier and
        X-Anonymous-Consumer; values that do not apply are cleared, so a client cannot
        spoof them (§3.0)."""
        self.authenticate_with(consumer, credential,
                               consumer_overlay(consumer, identifier, anonymous))

    def authenticate_with(self, consumer: dict[str, Any] | None,
                          credential: dict[str, Any] | None, overlay: Overlay) -> None:
        """authenticate, with the consumer headers made ahead by
        `consumer_overlay(consumer, identifier, anonymous)`: for an auth plugin that keeps
        them per credential (jwt). `overlay` is not modified."""
        self.consumer = consumer
        self.credential = credential
        if self.req_overlay is None:
            self.req_overlay = dict(overlay)
        else:
            self.req_overlay.update(overlay)

    @property
    def consumer_id(self) -> str | None:
        c = self.consumer
        return c["id"] if c is not None else None

    # -- phase runners ----------------------------------------------------------------------
    def run_access(self, start: int = 0) -> bool:
        """Run access handlers from `start`. True: all ran and the request goes on; False:
        one answered (exit/error), or one is awaiting I/O and the rest continues later."""
        chain = self.chain
        fns = chain.access_fns  # None: consumer-scoped configs, resolved per request
        entries = chain.access
        if fns is not None:  # the usual chain: pre-bound methods, one loop without lookups
            # (no running index: a plugin's position is looked up when one is needed)
            for fn in (fns if start == 0 else fns[start:]):
                try:
                    pending = fn(self)
                except Exception:
                    self._plugin_failed(entries[fns.index(fn)].name)
                    return False
                if pending is not None:
                    self._await_access(pending, fns.index(fn) + 1)
                    return False
                if self.done:
                    return False
            return True
        for i in range(start, len(entries)):
            inst = entries[i].resolve(self.consumer_id)
            if inst is None:
                continue
            try:
                pending = inst.access(self)  # type: ignore[attr-defined]
            except Exception:
                self._plugin_failed(entries[i].name)
                return False
            if pending is not None:
                self._await_access(pending, i + 1)
                return False
            if self.done:
                return False
        return True

    def suspend(self) -> Suspended:
        """For an access method waiting on something that calls back (see `Suspended`)."""
        return Suspended(self)

    def _await_access(self, pending: Awaitable[None] | Suspended, resume_at: int) -> None:
        if pending.__class__ is Suspended:
            cast(Suspended, pending).awaited(resume_at)
            return
        if isinstance(pending, asyncio.Future):
            # resumed from the future's callback: no task and no coroutine per request
            pending.add_done_callback(lambda fut: self._access_done(fut, resume_at))
            return
        task = self.loop.create_task(self._access_async(cast(Awaitable[None], pending),
                                                        resume_at))
        tasks = self.state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _access_async(self, pending: Awaitable[None], resume_at: int) -> None:
        try:
            await pending
        except Exception:
            self._plugin_failed(self.chain.access[resume_at - 1].name)
            return
        if self.done:
            return
        if self.run_access(resume_at):
            cast(Any, self).proceed()

    def _access_done(self, fut: asyncio.Future[None], resume_at: int) -> None:
        exc = None if fut.cancelled() else fut.exception()
        if fut.cancelled() or exc is not None:
            self._access_failed(resume_at, exc)
        else:
            self._resume_access(resume_at)

    def _resume_access(self, resume_at: int) -> None:
        """The access phase goes on from plugin `resume_at`, then the upstream."""
        if self.done:
            return
        try:
            if self.run_access(resume_at):
                cast(Any, self).proceed()
        except Exception:
            log.exception("unexpected error handling %r", self.url[:200])
            self._fail_500()

    def _access_failed(self, resume_at: int, exc: BaseException | None) -> None:
        log.error("plugin %s failed", self.chain.access[resume_at - 1].name, exc_info=exc)
        self._fail_500()

    def _plugin_failed(self, name: str) -> None:
        # Kong: a Lua error in a handler → 500 with the kong.response.error body.
        log.exception("plugin %s failed", name)
        self._fail_500()

    def _fail_500(self) -> None:
        if not self.done and not self.response_started:
            self.keep_alive = False
            cast(Any, self).reply_error(500, local_reply.default_message(500))

    def run_response(self, headers: HeaderList | None) -> None:
        """The response phase. `headers` None: every plugin of the chain is a
        `response_headers` one (chain.response_light), whose headers land in resp_extra."""
        chain = self.chain
        fns = chain.response_fns
        if headers is None and fns is not None:
            for fn in fns:  # (no enumerate: the index is only needed when one fails)
                try:
                    fn(self)
                except Exception:
                    log.exception("plugin %s failed in the response phase",
                                  chain.response[fns.index(fn)].name)
            return
        consumer_id = self.consumer_id
        for entry in chain.response:
            inst = entry.resolve(consumer_id)
            if inst is None:
                continue
            try:
                if headers is None:
                    inst.response_headers(self)  # type: ignore[attr-defined]
                elif is_light_response(type(inst)):
                    # Its headers are applied to the list at its turn in the chain.
                    self.resp_extra = None
                    inst.response_headers(self)  # type: ignore[attr-defined]
                    for name, value, replace, _, _ in expand(self.resp_extra or []):
                        if value is None:
                            headers.remove(name)
                        elif replace:
                            headers.set(name, value)
                        else:
                            headers.add(name, value)
                    self.resp_extra = None
                else:
                    inst.response(self, headers)  # type: ignore[attr-defined]
            except Exception:
                log.exception("plugin %s failed in the response phase", inst.name)

    def run_body(self, chunk: bytes, last: bool) -> bytes:
        consumer_id = self.consumer_id
        for entry in self.chain.body:
            inst = entry.resolve(consumer_id)
            if inst is None:
                continue
            try:
                chunk = inst.body(self, chunk, last)  # type: ignore[attr-defined]
            except Exception:
                log.exception("plugin %s failed in the body phase", inst.name)
        return chunk

    def run_log(self) -> None:
        chain = self.chain
        fns = chain.log_fns
        if fns is not None:
            for fn in fns:
                try:
                    fn(self)
                except Exception:
                    log.exception("plugin %s failed in the log phase",
                                  chain.log[fns.index(fn)].name)
            return
        consumer_id = self.consumer_id
        for entry in chain.log:
            inst = entry.resolve(consumer_id)
            if inst is None:
                continue
            try:
                inst.log(self)  # type: ignore[attr-defined]
            except Exception:
                log.exception("plugin %s failed in the log phase", inst.name)

    # -- load balancing (kong.service.set_upstream) -----------------------------------------
    def set_upstream(self, name: str) -> None:
        """Balance this request over the upstream `name` instead of the service's own host
        (access phase; canary / circuit-breaker plugins). Raises ValueError, with Kong's
        message, when the config has no such upstream."""
        bal = self.snapshot.balancers.get(name)  # type: ignore[attr-defined]
        if bal is None:
            raise ValueError(f"could not find an Upstream named '{name}'")
        self.balancer = bal
