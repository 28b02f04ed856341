"""Router lint: routes (or some of their paths) that can never match.

Kong's ``traditional_compatible`` router (§2.5) tries matchers in (priority, UUID) order,
highest first, and the first one whose conditions hold wins. A matcher B is *shadowed*
when some higher-ranked matcher A matches every request B matches: B is dead
configuration. When A and B have the *same* priority the winner is decided by the larger
UUID alone -- legal, but surprising (renaming a route flips it), so it is reported as a
tie.

The matchers, their priorities and their order come from the router itself
(``tollway.dataplane.router``), never re-derived here. "A covers B" is decided
conservatively: only when it is provable from the conditions (subset of methods, hosts,
header values; a prefix of B's prefixes or of a regex's literal start). Anything else is
assumed to overlap only partly, so the lint has no false positives, only misses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tollway.config.model import Config
from tollway.dataplane.router.matcher import Matcher, regex_literal_prefix
from tollway.dataplane.router.router import build_router

__all__ = ["RouteWarning", "lint_routes"]


@dataclass(frozen=True)
class RouteWarning:
    kind: str  # "shadowed" (a higher priority wins) or "tie" (same priority: UUID decides)
    route: str  # the route that never matches (name, else id)
    by: str  # the route that wins instead
    paths: tuple[str, ...]  # the paths concerned (empty: the whole, path-less route)
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "route": self.route, "by": self.by,
                "paths": list(self.paths), "message": self.message}


def _label(m: Matcher) -> str:
    return str(m.route.get("name") or m.route.get("id"))


def _hosts_covered(a: Matcher, b: Matcher) -> bool:
    if not a.has_hosts:
        return True
    if not b.has_hosts:
        return False
    for host in b.host_plain:
        if not (host in a.host_plain or _wild_ok(a, host, None, any_port=True)):
            return False
    for host, port in b.host_plain_port:
        if not (host in a.host_plain or (host, port) in a.host_plain_port
                or _wild_ok(a, host, port, any_port=False)):
            return False
    # a wildcard host of B is covered only by the same (or a port-free) wildcard of A
    for suffix, wport in b.host_suffix:
        if not any(s == suffix and p in (None, wport) for s, p in a.host_suffix):
            return False
    for prefix, wport in b.host_prefix:
        if not any(s == prefix and p in (None, wport) for s, p in a.host_prefix):
            return False
    return True


def _wild_ok(a: Matcher, host: str, port: int | None, any_port: bool) -> bool:
    # B's plain host without a port matches any port, so only a port-free wildcard covers it
    for suffix, want in a.host_suffix:
        if host.endswith(suffix) and (want is None or (not any_port and want == port)):
            return True
    for prefix, want in a.host_prefix:
        if host.startswith(prefix) and (want is None or (not any_port and want == port)):
            return True
    return False


def _headers_covered(a: Matcher, b: Matcher) -> bool:
    b_conds = {name: (values, patterns) for name, values, patterns in b.header_conds}
    for name, values, patterns in a.header_conds:
        if name not in b_conds:
            return False
        b_values, b_patterns = b_conds[name]
        if not b_values <= values:
            return False
        a_sources = {p.pattern for p in patterns}
        if not {p.pattern for p in b_patterns} <= a_sources:
            return False
    return True


def _prefix_covered(a: Matcher, path: str) -> bool:
    """Does A's path condition hold for every request path the prefix ``path`` matches?"""
    if not a.prefixes and not a.regexes:
        return True
    return any(path.startswith(p) for p in a.prefixes)


def _regex_covered(a: Matcher, pattern: re.Pattern[str]) -> bool:
    """... for every path the (compiled, start-anchored) regex ``pattern`` matches?"""
    if not a.prefixes and not a.regexes:
        return True
    if any(r.pattern == pattern.pattern and r.flags == pattern.flags for r in a.regexes):
        return True
    # every match of a start-anchored regex begins with its literal prefix
    source = pattern.pattern
    literal = regex_literal_prefix(source[1:]) if source.startswith("^") else ""
    return bool(literal) and any(literal.startswith(p) for p in a.prefixes)


def _covers(a: Matcher, b: Matcher) -> bool:
    if a.methods is not None and (b.methods is None or not b.methods <= a.methods):
        return False
    if a.snis is not None and (b.snis is None or not b.snis <= a.snis):
        return False
    if not _hosts_covered(a, b) or not _headers_covered(a, b):
        return False
    if not b.prefixes and not b.regexes:
        return not a.prefixes and not a.regexes
    return (all(_prefix_covered(a, p) for p in b.prefixes)
            and all(_regex_covered(a, r) for r in b.regexes))


def _source_paths(m: Matcher) -> Iterable[str]:
    # the configured paths of this matcher, as written (regex sources carry `~`)
    for p in m.route.get("paths") or ():
        if p in m.prefixes or (p.startswith("~") and m.regexes):
            yield p


def lint_routes(config: Config) -> list[RouteWarning]:
    """Warnings for every matcher that a better-ranked matcher of another route always
    beats. Routes whose every matcher is beaten get one warning for the whole route."""
    router = build_router(config)
    ranked = list(reversed(router.matchers))  # best first
    # (route id) -> list of (matcher, winner)
    beaten: dict[str, list[tuple[Matcher, Matcher]]] = {}
    per_route: dict[str, int] = {}
    for m in ranked:
        per_route[str(m.route.get("id"))] = per_route.get(str(m.route.get("id")), 0) + 1
    for i, b in enumerate(ranked):
        for a in ranked[:i]:
            if a.route is b.route:
                continue
            if _covers(a, b):
                beaten.setdefault(str(b.route.get("id")), []).append((b, a))
                break
    warnings: list[RouteWarning] = []
    for route_id, pairs in beaten.items():
        # one matcher, all of it beaten: the route as a whole is dead
        whole = len(pairs) == per_route[route_id] == 1
        for b, a in pairs:
            kind = "tie" if a.priority == b.priority else "shadowed"
            paths = tuple(_source_paths(b))
            subject = (f"route {_label(b)!r}" if whole
                       else f"route {_label(b)!r} path(s) {', '.join(paths)}")
            if kind == "tie":
                message = (f"{subject} can never match: route {_label(a)!r} matches the same "
                           f"requests with the same priority and wins only because its id "
                           f"is greater ({a.route.get('id')} > {b.route.get('id')}); "
                           f"make the conditions differ or merge the routes")
            else:
                message = (f"{subject} can never match: route {_label(a)!r} matches every "
                           f"request it would and has a higher priority")
            warnings.append(RouteWarning(kind, _label(b), _label(a), paths, message))
    return warnings
