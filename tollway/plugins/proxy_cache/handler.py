"""proxy-cache (Kong §3.9): serve cacheable responses from worker memory.

access:   not cacheable (method; with cache_control a no-store/no-cache request or one with
          Authorization) → `X-Cache-Status: Bypass`. Otherwise the cache key is computed
          (`X-Cache-Key`) and looked up: absent → Miss (or 504 for `only-if-cached`), stale
          → Refresh, fresh → Hit, answered here with the stored status, headers and body plus
          `Age` and `X-Cache-Status: Hit`.
response: on Miss/Refresh, a response whose status, Content-Type and (with cache_control)
          Cache-Control allow it is marked for storing with its headers; otherwise Bypass.
body:     the marked response's chunks are kept (up to `store.MAX_ENTRY`) and stored on the
          last one, for `storage_ttl`, else the resource TTL (cache_control), else cache_ttl.
"""

from __future__ import annotations

import re
import time
from typing import Any

from tollway.plugins.base import BuildContext, HeaderList, Plugin
from tollway.plugins.proxy_cache.policy import (
    cache_key,
    content_type_matches,
    parse_directives,
    parse_mime,
    resource_ttl,
)
from tollway.plugins.proxy_cache.schema import SHARED_DICTS, config_schema
from tollway.plugins.proxy_cache.store import Entry, MemoryDict, entry_size

# Not replayed from the cache: hop-by-hop headers, Content-Length (re-derived), anything
# matching "ratelimit-remaining" (Kong's overwritable_header), the headers tollway writes
# itself on every local reply (Date, Server), and this plugin's own (set again on a hit).
_NOT_REPLAYED = frozenset((b"connection", b"keep-alive", b"proxy-authenticate",
                           b"proxy-authorization", b"te", b"trailers", b"transfer-encoding",
                           b"upgrade", b"content-length", b"date", b"server",
                           b"age", b"x-cache-status", b"x-cache-key"))
_RL_REMAINING = re.compile(rb"ratelimit-remaining", re.I)


class State:
    """Per request (in `req.ctx`): the key, and the response being kept for storing."""

    __slots__ = ("chunks", "headers", "hit", "key", "size", "ttl")

    def __init__(self, key: str) -> None:
        self.key = key
        self.hit = False
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.ttl = 0


class ProxyCache(Plugin):
    name = "proxy-cache"
    priority = 100
    version = "3.9.0"
    config_schema = config_schema

    def __init__(self, config: dict[str, Any], entity: dict[str, Any],
                 ctx: BuildContext | None = None) -> None:
        super().__init__(config, entity, ctx)
        c = config
        self.methods = frozenset(m.encode() for m in c["request_method"])
        self.codes = frozenset(c["response_code"])
        self.ctypes = [p for p in (parse_mime(t) for t in c["content_type"]) if p is not None]
        self.cache_ttl: int = c["cache_ttl"]
        self.storage_ttl: int | None = c.get("storage_ttl")
        self.cache_control: bool = c["cache_control"]
        self.ignore_uri_case = bool(c.get("ignore_uri_case"))
        rh = c["response_headers"]
        self.h_age, self.h_status, self.h_key = rh["age"], rh["X-Cache-Status"], rh["X-Cache-Key"]
        name = c["memory"]["dictionary_name"]
        slot = "proxy-cache:" + name
        store = self.ctx.worker.get(slot)
        if store is None:
            store = MemoryDict(SHARED_DICTS.get(name, 128 << 20))
            if not self.ctx.offline:
                self.ctx.worker[slot] = store
        self.store: MemoryDict = store

    # -- access -----------------------------------------------------------------------------
    def _diag(self, req: Any, enabled: bool, name: str, value: str) -> None:
        if enabled or req.get_header("kong-debug") is not None:
            req.set_response_header(name, value)

    def access(self, req: Any) -> None:
        cc = parse_directives(req.get_headers("cache-control")) if self.cache_control else {}
        if req.method not in self.methods or (self.cache_control and (
                cc.get("no-store") or cc.get("no-cache")
                or req.get_header("authorization") is not None)):
            self._diag(req, self.h_status, "X-Cache-Status", "Bypass")
            return
        key = cache_key(req, self.config, self.ignore_uri_case)
        self._diag(req, self.h_key, "X-Cache-Key", key)
        entry = self.store.get(key)
        if entry is None:
            if self.cache_control and cc.get("only-if-cached"):
                req.exit(504)
                return
            self._signal(req, key, "Miss")
            return
        now = int(time.time())
        age = now - entry.timestamp
        if self.cache_control:
            max_age, max_stale = _n(cc.get("max-age")), _n(cc.get("max-stale"))
            min_fresh = _n(cc.get("min-fresh"))
            if ((max_age is not None and age > max_age)
                    or (max_stale is not None and age - entry.ttl > max_stale)
                    or (min_fresh is not None and entry.ttl - age < min_fresh)):
                self._signal(req, key, "Refresh")
                return
        elif age > self.cache_ttl:
            self._signal(req, key, "Refresh")
            return
        self._hit(req, key, entry, age)

    def _signal(self, req: Any, key: str, status: str) -> None:
        req.ctx[self.name] = State(key)
        self._diag(req, self.h_status, "X-Cache-Status", status)

    def _hit(self, req: Any, key: str, entry: Entry, age: int) -> None:
        state = State(key)
        state.hit = True
        req.ctx[self.name] = state
        # The stored headers verbatim (order, case, repeats), bar the ones re-derived here.
        headers = [(n, v) for n, v in entry.headers
                   if (ln := n.lower()) not in _NOT_REPLAYED and not _RL_REMAINING.search(ln)]
        if self.h_age or req.get_header("kong-debug") is not None:
            headers.append((b"Age", b"%d" % max(age, 0)))
        self._diag(req, self.h_status, "X-Cache-Status", "Hit")
        req.exit_raw(entry.status, headers, entry.body)

    # -- response ---------------------------------------------------------------------------
    def response(self, req: Any, headers: HeaderList) -> None:
        state: State | None = req.ctx.get(self.name)
        if state is None or state.hit:
            return
        cc = parse_directives([v.decode("latin-1") for v in headers.get_all(b"cache-control")])
        ttl = self._cacheable(req.status, headers, cc)
        if ttl is None:
            self._bypass(req, headers)
            return
        state.ttl = ttl
        state.headers = list(headers.items)

    def _bypass(self, req: Any, headers: HeaderList) -> None:
        req.ctx.pop(self.name, None)
        if self.h_status or req.get_header("kong-debug") is not None:
            headers.set(b"X-Cache-Status", b"Bypass")

    def _cacheable(self, status: int, headers: HeaderList, cc: dict[str, Any]) -> int | None:
        """The resource TTL when the response may be stored, else None."""
        if status not in self.codes:
            return None
        ctypes = headers.get_all(b"content-type")
        if len(ctypes) != 1 or not ctypes[0] or not content_type_matches(
                ctypes[0].decode("latin-1"), self.ctypes):
            return None
        if not self.cache_control:
            return self.cache_ttl
        if cc.get("private") or cc.get("no-store") or cc.get("no-cache"):
            return None
        ttl = resource_ttl(cc, headers.get_all(b"expires"))
        return ttl if ttl > 0 else None

    # -- body -------------------------------------------------------------------------------
    def body(self, req: Any, chunk: bytes, last: bool) -> bytes:
        state: State | None = req.ctx.get(self.name)
        if state is None or state.headers is None:
            return chunk
        if chunk:
            state.size += len(chunk)
            if state.size > self.store.max_entry:
                req.ctx.pop(self.name, None)  # too large to store: stop keeping it
                return chunk
            state.chunks.append(chunk)
        if last:
            req.ctx.pop(self.name, None)
            body = b"".join(state.chunks)
            ttl = self.storage_ttl or (state.ttl if self.cache_control else self.cache_ttl)
            self.store.set(state.key, Entry(
                status=req.status, headers=state.headers, body=body,
                timestamp=int(time.time()), ttl=state.ttl,
                expires=time.monotonic() + ttl, size=entry_size(state.headers, body)))
        return chunk


def _n(v: Any) -> float | None:
    return v if isinstance(v, int | float) and not isinstance(v, bool) else None

