"""Compilation of Kong routes into prioritised matchers (``traditional_compatible``).

One route becomes one or more ``Matcher`` objects exactly like Kong's
``kong/router/compat.lua``: a route with several paths is split into one
matcher per distinct prefix byte-length plus one for all its regex paths, each
with a derived UUIDv5 id; every matcher gets the 64-bit priority of §2.5.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any

__all__ = [
    "Matcher",
    "compile_route",
    "derived_id",
    "priority_of",
    "regex_literal_prefix",
    "split_host_port",
]

log = logging.getLogger(__name__)

# Namespace Kong's compat router uses to derive ids of split routes.
_SPLIT_NAMESPACE = uuid.UUID("7f145bf9-0dce-4f91-98eb-debbce4b9f6b")

_MAX_HEADER_COUNT = 255
_PLAIN_HOST_ONLY_BIT = 1 << 60
_REGEX_URL_BIT = 1 << 51
# regex_priority occupies bits 19-50 (32 bits). Kong casts the Lua number to
# uint64 and shifts it, so a negative value smears ones into the weight bits and
# such a route outranks everything -- an accident, not a feature. We bias the
# value by 2**31 instead (clamped to the field): ordering among non-negative
# priorities is identical to Kong, negative ones sort below zero as users expect,
# and the field can never spill into higher bits.
_REGEX_PRIORITY_BIAS = 1 << 31
_REGEX_PRIORITY_MAX = (1 << 32) - 1

# Rust's regex accepts (?<name>...) for named groups; Python's `re` wants (?P<name>...).
# Only rewrite when a name follows, so Python look-behinds `(?<=`/`(?<!` are untouched.
_NAMED_GROUP = re.compile(r"\(\?<(?=[A-Za-z_])")
_LEADING_FLAGS = re.compile(r"\(\?[A-Za-z]+\)")


def split_host_port(value: str) -> tuple[str, int | None]:
    """Split ``host:port`` at the first colon, like Kong (IPv6 literals stay whole)."""
    cut = value.find(":")
    if cut < 0:
        return value, None
    port = value[cut + 1:]
    if not port.isdigit() or not port.isascii():
        return value, None
    return value[:cut], int(port)


def derived_id(route_id: str, group: str) -> str:
    """Id Kong gives a split matcher: uuid5(ns, "<route id>#<len or 'true'>")."""
    return str(uuid.uuid5(_SPLIT_NAMESPACE, f"{route_id}#{group}"))


def _uuid_key(value: str) -> bytes:
    # atc-router orders by the 16 UUID bytes; fall back to the text for odd ids.
    try:
        return uuid.UUID(value).bytes
    except (ValueError, AttributeError, TypeError):
        return str(value).encode()


def _nonempty(value: Any) -> bool:
    return bool(value)


def priority_of(route: Mapping[str, Any], paths: list[str] | None) -> int:
    """64-bit ATC priority of one matcher (``paths`` = this matcher's paths)."""
    weight = 0
    for field in ("methods", "hosts", "snis"):
        if _nonempty(route.get(field)):
            weight += 1
    headers = route.get("headers")
    header_count = len(headers) if headers else 0
    if header_count:
        weight += 1
        header_count = min(header_count, _MAX_HEADER_COUNT)

    hosts = route.get("hosts")
    # Kong tests `type(hosts) == "table"`: an explicit empty list counts as
    # "plain host only" while null does not. Reproduced on purpose.
    plain_host_only = isinstance(hosts, list) and not any("*" in h for h in hosts)

    regex = False
    prefix_len = 0
    if paths:
        weight += 1
        if paths[0].startswith("~"):
            regex = True
        else:
            # Lua's `#p` is a byte length.
            prefix_len = len(paths[0].encode("utf-8"))

    prio = (weight << 61) | (header_count << 52) | (prefix_len & 0x7FFFF)
    if plain_host_only:
        prio |= _PLAIN_HOST_ONLY_BIT
    if regex:
        rp = int(route.get("regex_priority") or 0) + _REGEX_PRIORITY_BIAS
        rp = max(0, min(rp, _REGEX_PRIORITY_MAX))
        prio |= _REGEX_URL_BIT | (rp << 19)
    return prio


class Matcher:
    """One ATC matcher: the non-path conditions of a route plus a set of paths.

    ``rank`` is the matcher's position in the global (priority, uuid) order;
    higher rank wins. Paths are matched by the router (prefix index) or by
    ``match_regex`` (regex matchers).
    """

    __slots__ = (
        "base",
        "has_hosts",
        "header_conds",
        "host_plain",
        "host_plain_port",
        "host_prefix",
        "host_suffix",
        "id",
        "literals",
        "methods",
        "prefixes",
        "priority",
        "rank",
        "regexes",
        "route",
        "service",
        "snis",
        "sort_key",
        "strip_path",
    )

    def __init__(
        self,
        route: dict[str, Any],
        service: dict[str, Any] | None,
        matcher_id: str,
        paths: list[str] | None,
        regexes: tuple[re.Pattern[str], ...],
        header_conds: tuple[tuple[str, frozenset[str], tuple[re.Pattern[str], ...]], ...],
    ) -> None:
        self.route = route
        self.service = service
        self.id = matcher_id
        self.priority = priority_of(route, paths)
        self.sort_key = (self.priority, _uuid_key(matcher_id))
        self.rank = 0
        self.strip_path = bool(route.get("strip_path"))
        svc_path = service.get("path") if service else None
        self.base: str = svc_path or "/"

        methods = route.get("methods")
        self.methods: frozenset[str] | None = frozenset(methods) if methods else None

        snis = route.get("snis")
        # Kong drops the trailing dot of FQDN-style SNIs before comparing.
        self.snis: frozenset[str] | None = (
            frozenset(s[:-1] if len(s) > 1 and s.endswith(".") else s for s in snis)
            if snis
            else None
        )

        plain: set[str] = set()
        plain_port: set[tuple[str, int]] = set()
        suffix: list[tuple[str, int | None]] = []
        prefix: list[tuple[str, int | None]] = []
        for entry in route.get("hosts") or ():
            host, port = split_host_port(entry)
            if host.startswith("*"):
                suffix.append((host[1:], port))
            elif host.endswith("*"):
                prefix.append((host[:-1], port))
            elif port is None:
                plain.add(host)
            else:
                plain_port.add((host, port))
        self.has_hosts = bool(route.get("hosts"))
        self.host_plain = frozenset(plain)
        self.host_plain_port = frozenset(plain_port)
        self.host_suffix = tuple(suffix)
        self.host_prefix = tuple(prefix)

        self.prefixes: tuple[str, ...] = tuple(
            p for p in (paths or ()) if not p.startswith("~")
        )
        self.regexes = regexes
        # Literal start of each regex path; empty tuple when any is unknown,
        # which sends the matcher to the scanned list.
        literals = tuple(regex_literal_prefix(p[1:]) for p in (paths or ()) if p.startswith("~"))
        self.literals: tuple[str, ...] = literals if literals and all(literals) else ()
        self.header_conds = header_conds

    # -- conditions ------------------------------------------------------

    def host_ok(self, host: str | None, port: int | None) -> bool:
        if host is None:
            return False
        if host in self.host_plain:
            return True
        if port is not None and (host, port) in self.host_plain_port:
            return True
        for suffix, want in self.host_suffix:
            if host.endswith(suffix) and (want is None or want == port):
                return True
        for prefix, want in self.host_prefix:
            if host.startswith(prefix) and (want is None or want == port):
                return True
        return False

    def headers_ok(self, headers: Mapping[str, list[str]] | None) -> bool:
        if headers is None:
            return False
        for name, values, patterns in self.header_conds:
            got = headers.get(name)
            if not got:
                return False
            for raw in got:
                value = raw.lower()
                if value in values:
                    break
                if any(p.search(value) for p in patterns):
                    break
            else:
                return False
        return True

    def conditions_ok(
        self,
        method: str,
        host: str | None,
        port: int | None,
        headers: Mapping[str, list[str]] | None,
        scheme: str,
        sni: str | None,
    ) -> bool:
        """Every non-path condition (AND across attributes, OR within one)."""
        if self.methods is not None and method not in self.methods:
            return False
        if self.has_hosts and not self.host_ok(host, port):
            return False
        # SNI conditions only bind when the request came in over TLS (§2.3).
        if self.snis is not None and scheme == "https" and sni not in self.snis:
            return False
        return not self.header_conds or self.headers_ok(headers)

    def match_regex(self, path: str) -> re.Match[str] | None:
        # OR in configuration order; the first matching regex supplies the
        # matched text and captures, as atc-router short-circuits `||`.
        for pattern in self.regexes:
            m = pattern.search(path)
            if m is not None:
                return m
        return None


def _compile_headers(
    route: Mapping[str, Any],
) -> tuple[tuple[str, frozenset[str], tuple[re.Pattern[str], ...]], ...] | None:
    headers = route.get("headers")
    if not headers:
        return ()
    conds = []
    for name, values in headers.items():
        plain: set[str] = set()
        patterns: list[re.Pattern[str]] = []
        for value in values or ():
            # Kong lower-cases the whole value, regex source included, and
            # matches it unanchored against the lower-cased request value.
            if value.startswith("~*"):
                try:
                    patterns.append(re.compile(value[2:].lower()))
                except re.error as exc:
                    log.error("route %s: invalid header regex %r: %s", route.get("id"), value, exc)
                    return None
            else:
                plain.add(value.lower())
        # ATC field names fold `-` and `_` together; request headers arrive with dashes.
        key = name.lower().replace("_", "-")
        conds.append((key, frozenset(plain), tuple(patterns)))
    return tuple(conds)


_REGEX_META = frozenset(".^$*+?{}[]\\|()")
_OPTIONAL_NEXT = ("?", "*", "{")


def regex_literal_prefix(source: str) -> str:
    """Literal text every match of ``^source`` must start with ("" if unknown).

    Used only to index regex matchers so most of them are never evaluated; a
    conservative (short or empty) answer is always safe.
    """
    if "|" in source:
        # `^a|b` anchors only the first alternative; don't reason about it.
        return ""
    out: list[str] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c == "\\":
            if i + 1 >= n or source[i + 1].isalnum() or not source[i + 1].isascii():
                break  # a class like \d or an unknown escape
            lit, step = source[i + 1], 2
        elif c in _REGEX_META:
            break
        else:
            lit, step = c, 1
        if source[i + step:i + step + 1] in _OPTIONAL_NEXT:
            break  # this literal may be absent (x?, x*, x{0,})
        out.append(lit)
        i += step
    return "".join(out)


def _compile_regex(route_id: Any, path: str) -> re.Pattern[str] | None:
    # Kong prepends `^` and the Rust engine searches; with `search` an
    # alternation like `^/a|/b` keeps its (unanchored second branch) meaning.
    source = _NAMED_GROUP.sub("(?P<", path[1:])
    # Python wants global flags such as `(?i)` first; Rust accepts them after `^`.
    flags = _LEADING_FLAGS.match(source)
    head = flags.group(0) if flags is not None else ""
    source = head + "^" + source[len(head):]
    try:
        return re.compile(source)
    except re.error as exc:
        # Kong logs and leaves the matcher out of the router; so do we.
        log.error("route %s: invalid regex path %r: %s", route_id, path, exc)
        return None


def compile_route(route: dict[str, Any], service: dict[str, Any] | None) -> list[Matcher]:
    """Split one route into matchers (see module docstring)."""
    route_id = str(route.get("id"))
    header_conds = _compile_headers(route)
    if header_conds is None:
        return []

    paths = route.get("paths") or []
    if len(paths) <= 1:
        groups: list[tuple[str, list[str] | None]] = [(route_id, paths or None)]
    else:
        # Group by Lua key: `true` for regexes, byte length for prefixes.
        by_key: dict[str, list[str]] = {}
        for p in paths:
            k = "true" if p.startswith("~") else str(len(p.encode("utf-8")))
            by_key.setdefault(k, []).append(p)
        groups = [(derived_id(route_id, k), ps) for k, ps in by_key.items()]

    matchers = []
    for matcher_id, group_paths in groups:
        regexes: list[re.Pattern[str]] = []
        if group_paths and group_paths[0].startswith("~"):
            for p in group_paths:
                compiled = _compile_regex(route_id, p)
                if compiled is not None:
                    regexes.append(compiled)
            if len(regexes) != len(group_paths):
                # One bad regex invalidates the whole ATC expression of this matcher.
                continue
        matchers.append(
            Matcher(route, service, matcher_id, group_paths, tuple(regexes), header_conds)
        )
    return matchers
