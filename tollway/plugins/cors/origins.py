"""Which `Access-Control-Allow-Origin` a request gets (Kong's `configure_origin`), compiled
once per config.

Kong normalises origins with LuaSocket's `url.parse`: `scheme://host[:port]`, the default
port of http (80) and https (443) dropped; a value without `//authority` is kept as is (its
"host" is the whole value). A configured entry with a character outside `[A-Za-z0-9.:/-]` is
a regex: a trailing `$` is added when missing, one leading `^` removed, and it is matched at
the start of the request origin's host (entry without `:`) or of its normalised form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tollway.config.typedefs import to_python_regex

_SCHEME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9+\-.]*):")
_PORT = re.compile(r":([^:\]]*)$")
_LITERAL = re.compile(r"^[A-Za-z0-9.:/-]+$")
CACHE_SIZE = 10_000


def normalize(origin: str) -> tuple[str, str]:
    """(domain, host) as Kong's `normalize_origin` computes them."""
    rest = origin
    hash_at = rest.find("#")  # url.parse drops the fragment first
    if hash_at >= 0:
        rest = rest[:hash_at]
    scheme = None
    m = _SCHEME.match(rest)
    if m is not None:
        scheme = m.group(1)
        rest = rest[m.end():]
    if not rest.startswith("//"):
        return origin, origin
    authority = rest[2:]
    slash = authority.find("/")
    if slash >= 0:
        authority = authority[:slash]
    at = authority.find("@")
    if at >= 0:
        authority = authority[at + 1:]
    port = None
    pm = _PORT.search(authority)
    if pm is not None:
        port = pm.group(1)
        authority = authority[:pm.start()]
    if not authority:
        return origin, origin
    host = authority[1:-1] if authority.startswith("[") and authority.endswith("]") else authority
    if (scheme == "http" and port == "80") or (scheme == "https" and port == "443"):
        port = None
    domain = (scheme + "://" if scheme else "") + host + (":" + port if port is not None else "")
    return domain, host


@dataclass(frozen=True, slots=True)
class _Entry:
    regex: re.Pattern[str] | None
    domain: str
    by_host: bool


class OriginPolicy:
    """`allow_all`: ACAO `*` with no Vary; `fixed`: one literal origin, sent whatever the
    request's Origin; otherwise `resolve(origin)` gives the ACAO value or None (removed)."""

    def __init__(self, origins: list[str] | None) -> None:
        origins = origins or []
        self.allow_all = not origins or origins == ["*"]
        self.fixed: str | None = None
        if len(origins) == 1 and _LITERAL.match(origins[0]):
            self.fixed = origins[0]
        # Kong stops at the first "*" while compiling, answering "*" for any request Origin.
        self.star = "*" in origins
        entries = []
        for entry in origins:
            if entry == "*":
                break
            by_host = ":" not in entry
            if not _LITERAL.match(entry):
                pattern = entry if entry.endswith("$") else entry + "$"
                if pattern.startswith("^"):
                    pattern = pattern[1:]
                entries.append(_Entry(re.compile(to_python_regex(pattern)), "", by_host))
            else:
                entries.append(_Entry(None, normalize(entry)[0], by_host))
        self.entries = tuple(entries)
        self.cache: dict[str, str | None] = {}

    def resolve(self, origin: str) -> str | None:
        cache = self.cache
        try:
            return cache[origin]
        except KeyError:
            pass
        domain, host = normalize(origin)
        found = None
        for e in self.entries:
            if e.regex is not None:
                if e.regex.match(host if e.by_host else domain):
                    found = domain
                    break
            elif e.domain == domain:
                found = domain
                break
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        cache[origin] = found
        return found
