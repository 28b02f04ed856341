"""Shared pieces of the authentication plugins (key-auth, jwt): consumer lookup, the
`anonymous` fallback of §3.0, and small request parsers.

Indexes are built once per config snapshot through `BuildContext.once`, so every auth plugin
instance of a snapshot shares them and nothing is looked up in a list per request.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

if TYPE_CHECKING:
    from tollway.plugins.base import BuildContext

log = logging.getLogger("tollway.plugins")


class Consumers:
    """Consumers of a snapshot by id and by username."""

    __slots__ = ("by_id", "by_username")

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.by_id: dict[str, dict[str, Any]] = {c["id"]: c for c in rows}
        self.by_username: dict[str, dict[str, Any]] = {
            c["username"]: c for c in rows if c.get("username")}

    def load(self, ref: str) -> dict[str, Any] | None:
        """kong.client.load_consumer(ref, search_by_username=true): by id, then username."""
        return self.by_id.get(ref) or self.by_username.get(ref)


def consumers(ctx: BuildContext) -> Consumers:
    result: Consumers = ctx.once("auth:consumers", lambda: Consumers(ctx.entities("consumers")))
    return result


class Anonymous:
    """The `anonymous` setting of an auth plugin, resolved once per snapshot (§3.0)."""

    __slots__ = ("consumer", "ref")

    def __init__(self, ref: str | None, ctx: BuildContext) -> None:
        self.ref = ref
        self.consumer = consumers(ctx).load(ref) if ref else None

    def __bool__(self) -> bool:
        return bool(self.ref)

    def apply(self, req: Any) -> None:
        """Authentication failed and `anonymous` is set: attach the anonymous consumer, or
        answer 500 when it does not exist (Kong 3.8+ message)."""
        if self.consumer is None:
            msg = f"anonymous consumer {self.ref} is configured but doesn't exist"
            log.error(msg)
            req.error(500, msg)
            return
        req.authenticate(self.consumer, None, anonymous=True)


def parse_query(qs: str) -> dict[str, list[str | bool]]:
    """ngx.req.get_uri_args: `a=1&a=2` → two values, `a=` → "", a bare `a` → True."""
    out: dict[str, list[str | bool]] = {}
    if not qs:
        return out
    for part in qs.split("&"):
        if not part:
            continue
        name, eq, value = part.partition("=")
        if not name:
            continue
        key = unquote_plus(name)
        out.setdefault(key, []).append(unquote_plus(value) if eq else True)
    return out


def remove_query_arg(qs: str, name: str) -> str:
    """The query string without any `name` argument; the others keep their raw bytes."""
    kept = [p for p in qs.split("&")
            if p and unquote_plus(p.partition("=")[0]) != name]
    return "&".join(kept)


def header_values(req: Any, name: str) -> list[str]:
    """Request header values, with nginx's `_`/`-` tolerance in the name."""
    normalised = name.replace("_", "-")
    values: list[str] = req.get_headers(normalised)
    if not values and normalised != name:
        values = req.get_headers(name)
    return values


def cookie(req: Any, name: str) -> str | None:
    """nginx's $cookie_<name>: the first cookie with that name (case-insensitive)."""
    lname = name.lower()
    for header in req.get_headers("cookie"):
        for part in header.split(";"):
            key, eq, value = part.strip().partition("=")
            if eq and key.strip().lower() == lname:
                return value.strip()
    return None
