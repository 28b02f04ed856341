"""The compiled router: indexes over matchers, the match cache and ``RouteMatch``.

Precedence is the global (priority, uuid) order of §2.5, but lookup never walks
every route. Candidates come from three places, each pre-sorted by rank:

* prefix-path matchers, indexed per distinct prefix length by the prefix text
  (one dict probe per length that exists and fits the path);
* regex-path matchers whose regexes all start with literal text, indexed the
  same way by that text (only those are evaluated);
* path-less matchers whose hosts are all plain, indexed by host;
* everything else (other regexes, wildcard-host or host-less path-less
  matchers), scanned in rank order and abandoned as soon as no better rank is
  possible.

The best-ranked candidate whose conditions hold wins.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Protocol

from .matcher import Matcher, compile_route, split_host_port
from .paths import escape_path, normalize_path, upstream_path_v0

__all__ = ["RouteMatch", "Router", "build_router", "build_router_from_config"]

_HTTP_PROTOCOLS = frozenset(("http", "https", "grpc", "grpcs"))
_DEFAULT_PROTOCOLS = ("http", "https")
CACHE_SIZE = 4096
# Longer paths are not remembered by their bytes (Router.by_raw), so that a flood of long
# unique paths holds at most CACHE_SIZE short keys there.
RAW_PATH_MAX = 512
_MISS = object()


class RouteMatch:
    """Result of a successful match. Shared via the cache: treat as read-only."""

    __slots__ = ("captures", "normalized_path", "prefix", "prefix_bytes", "route", "service",
                 "upstream_path", "upstream_path_bytes")

    def __init__(
        self,
        route: dict[str, Any],
        service: dict[str, Any] | None,
        upstream_path: str,
        prefix: str | None,
        captures: dict[int | str, str] | None,
        normalized_path: str,
    ) -> None:
        self.route = route
        self.service = service
        self.upstream_path = upstream_path
        self.prefix = prefix
        # as the upstream request head writes them: encoded once per match, not per request
        # (a match is shared by every request the route caches answer with it)
        self.upstream_path_bytes = upstream_path.encode("utf-8", "surrogateescape")
        self.prefix_bytes = prefix.encode("utf-8", "surrogateescape") if prefix else b""
        self.captures = captures
        self.normalized_path = normalized_path

    def __repr__(self) -> str:
        return (
            f"RouteMatch(route={self.route.get('name') or self.route.get('id')!r}, "
            f"upstream_path={self.upstream_path!r}, prefix={self.prefix!r}, "
            f"captures={self.captures!r})"
        )


class _HasEntities(Protocol):
    @property
    def entities(self) -> Mapping[str, list[dict[str, Any]]]: ...


def _captures(m: Any) -> dict[int | str, str] | None:
    # atc-router reports captures only when group 1 participated; mirror that.
    if m.re.groups == 0 or m.group(1) is None:
        return None
    caps: dict[int | str, str] = {}
    for i, value in enumerate(m.groups(), start=1):
        if value is not None:
            caps[i] = value
    for name, value in m.groupdict().items():
        if value is not None:
            caps[name] = value
    return caps


class Router:
    """Immutable compiled routing table; build a new one per configuration."""

    __slots__ = (
        "_by_host",
        "_cache",
        "_cache_size",
        "_lengths",
        "_prefix_index",
        "_regex_index",
        "_regex_lengths",
        "_scan",
        "_sni_in_key",
        "by_raw",
        "matchers",
        "uses_headers",
    )

    def __init__(self, matchers: list[Matcher], cache_size: int = CACHE_SIZE) -> None:
        matchers.sort(key=lambda m: m.sort_key)
        for rank, m in enumerate(matchers):
            m.rank = rank
        self.matchers = matchers
        self.uses_headers = any(m.header_conds for m in matchers)

        prefix_index: dict[int, dict[str, list[Matcher]]] = {}
        regex_index: dict[int, dict[str, list[Matcher]]] = {}
        by_host: dict[str, list[Matcher]] = {}
        scan: list[Matcher] = []
        for m in matchers:
            if m.prefixes:
                for p in m.prefixes:
                    prefix_index.setdefault(len(p), {}).setdefault(p, []).append(m)
            elif m.literals:
                for lit in set(m.literals):
                    regex_index.setdefault(len(lit), {}).setdefault(lit, []).append(m)
            elif not m.regexes and m.has_hosts and not m.host_suffix and not m.host_prefix:
                hosts = {h for h in m.host_plain} | {h for h, _ in m.host_plain_port}
                for h in hosts:
                    by_host.setdefault(h, []).append(m)
            else:
                scan.append(m)

        # Every candidate list is kept best-rank-first so the first hit in a
        # list is that list's winner and later lists can stop early.
        def desc(items: list[Matcher]) -> list[Matcher]:
            return sorted(items, key=lambda m: -m.rank)

        self._prefix_index = {
            n: {p: desc(ms) for p, ms in table.items()} for n, table in prefix_index.items()
        }
        self._lengths = tuple(sorted(self._prefix_index, reverse=True))
        self._regex_index = {
            n: {p: desc(ms) for p, ms in table.items()} for n, table in regex_index.items()
        }
        self._regex_lengths = tuple(sorted(self._regex_index, reverse=True))
        self._by_host = {h: desc(ms) for h, ms in by_host.items()}
        self._scan = desc(scan)
        # SNI/scheme only change the outcome when some route declares snis.
        self._sni_in_key = any(m.snis for m in matchers)
        # Header values are not part of the key, so header routes disable caching.
        self._cache_size = cache_size
        self._cache: OrderedDict[tuple[Any, ...], RouteMatch | None] | None = (
            None if self.uses_headers or cache_size <= 0 else OrderedDict()
        )
        # The same answers by the request's bytes as received (method, Host, path): the
        # exchange looks here before decoding anything (three decodes and a call fewer a
        # request). Not when SNI or scheme decide (they are not in this key). A plain dict
        # emptied when full: a miss falls through to the LRU above.
        self.by_raw: dict[tuple[bytes, bytes, bytes], RouteMatch | None] | None = (
            None if self._cache is None or self._sni_in_key else {}
        )

    def __len__(self) -> int:
        return len(self.matchers)

    def match(
        self,
        method: str,
        host: str | None,
        path: str,
        headers: Mapping[str, list[str]] | None = None,
        scheme: str = "http",
        sni: str | None = None,
    ) -> RouteMatch | None:
        """Find the route for a request; None means "no Route matched" (404)."""
        cache = self._cache
        if cache is None:
            return self._match(method, host, path, headers, scheme, sni)
        key = (method, host, path, scheme, sni) if self._sni_in_key else (method, host, path)
        hit = cache.get(key, _MISS)
        if hit is not _MISS:
            cache.move_to_end(key)
            return hit  # type: ignore[return-value]
        result = self._match(method, host, path, headers, scheme, sni)
        cache[key] = result
        if len(cache) > self._cache_size:
            cache.popitem(last=False)
        return result

    def match_raw(self, key: tuple[bytes, bytes, bytes], scheme: str,
                  sni: str | None) -> RouteMatch | None:
        """match() for (method, Host, path) as received, remembered in `by_raw` (the
        caller looked there first)."""
        method, host, path = key
        result = self.match(method.decode("latin-1"), host.decode("latin-1") if host else None,
                            path.decode("utf-8", "surrogateescape"), None, scheme, sni)
        by_raw = self.by_raw
        if by_raw is not None and len(path) <= RAW_PATH_MAX:
            if len(by_raw) >= self._cache_size:
                by_raw.clear()
            by_raw[key] = result
        return result

    def _match(
        self,
        method: str,
        host_header: str | None,
        raw_path: str,
        headers: Mapping[str, list[str]] | None,
        scheme: str,
        sni: str | None,
    ) -> RouteMatch | None:
        path = normalize_path(raw_path)
        if host_header is None:
            host, port = None, None
        else:
            host, port = split_host_port(host_header)

        best: Matcher | None = None
        best_rank = -1
        matched_prefix: str | None = None
        regex_match: Any = None

        plen = len(path)
        for n in self._lengths:
            if n > plen:
                continue
            prefix = path[:n]
            candidates = self._prefix_index[n].get(prefix)
            if candidates is None:
                continue
            for m in candidates:
                if m.rank <= best_rank:
                    break
                if m.conditions_ok(method, host, port, headers, scheme, sni):
                    best, best_rank, matched_prefix = m, m.rank, prefix
                    break

        for n in self._regex_lengths:
            if n > plen:
                continue
            candidates = self._regex_index[n].get(path[:n])
            if candidates is None:
                continue
            for m in candidates:
                if m.rank <= best_rank:
                    break
                if not m.conditions_ok(method, host, port, headers, scheme, sni):
                    continue
                rm = m.match_regex(path)
                if rm is not None:
                    best, best_rank = m, m.rank
                    regex_match, matched_prefix = rm, rm.group(0)
                    break

        if host is not None:
            candidates = self._by_host.get(host)
            if candidates is not None:
                for m in candidates:
                    if m.rank <= best_rank:
                        break
                    if m.conditions_ok(method, host, port, headers, scheme, sni):
                        best, best_rank, matched_prefix = m, m.rank, None
                        regex_match = None
                        break

        for m in self._scan:
            if m.rank <= best_rank:
                break
            if not m.conditions_ok(method, host, port, headers, scheme, sni):
                continue
            if m.regexes:
                rm = m.match_regex(path)
                if rm is None:
                    continue
                best, regex_match, matched_prefix = m, rm, rm.group(0)
            else:
                best, matched_prefix, regex_match = m, None, None
            break

        if best is None:
            return None
        return self._result(best, path, matched_prefix, regex_match)

    @staticmethod
    def _result(m: Matcher, path: str, matched: str | None, regex_match: Any) -> RouteMatch:
        strip = m.strip_path
        joined = upstream_path_v0(m.base, path, matched, strip)
        prefix = matched if strip and matched is not None and matched != "/" else None
        captures = _captures(regex_match) if regex_match is not None else None
        return RouteMatch(m.route, m.service, escape_path(joined), prefix, captures, path)


def _route_protocols(route: Mapping[str, Any]) -> Any:
    return route.get("protocols") or _DEFAULT_PROTOCOLS


def build_router(
    routes: list[dict[str, Any]] | _HasEntities,
    services: list[dict[str, Any]] | None = None,
    *,
    cache_size: int = CACHE_SIZE,
) -> Router:
    """Compile routes (and their services) into a ``Router``.

    Accepts either ``(routes, services)`` lists or a config object with
    ``entities["routes"]``/``entities["services"]`` (the architecture contract).
    Routes of disabled services are left out (404); routes without a service,
    or whose service id is unknown, are kept with ``service=None`` (503).
    """
    if not isinstance(routes, list):
        return build_router_from_config(routes, cache_size=cache_size)
    by_id = {s["id"]: s for s in services or ()}
    matchers: list[Matcher] = []
    for route in routes:
        if not _HTTP_PROTOCOLS.intersection(_route_protocols(route)):
            continue
        ref = route.get("service")
        service = by_id.get(ref.get("id")) if ref else None
        if service is not None and service.get("enabled") is False:
            continue
        matchers.extend(compile_route(route, service))
    return Router(matchers, cache_size=cache_size)


def build_router_from_config(config: _HasEntities, *, cache_size: int = CACHE_SIZE) -> Router:
    entities = config.entities
    return build_router(
        list(entities.get("routes") or ()),
        list(entities.get("services") or ()),
        cache_size=cache_size,
    )
