"""Cache-Control parsing, freshness, content-type matching and Kong's cache key."""

from __future__ import annotations

import hashlib
import re
import time
from email.utils import parsedate_to_datetime
from typing import Any

from tollway.plugins.request_transformer.handler import parse_query

_DIRECTIVE = re.compile(r"^\s*([^=]+)(?:=(.+))?")
Directives = dict[str, Any]


def _tonumber(s: str) -> Any:
    try:
        return int(s)
    except ValueError:
        try:
            return float(s)
        except ValueError:
            return s


def parse_directives(values: list[str]) -> Directives:
    """Kong's parse_directive_header: `name` → True, `name=N` → number, else the string.
    Names are lower-cased and not trimmed on the right, as in Kong."""
    out: Directives = {}
    if not values:
        return out
    for part in ", ".join(values).split(","):
        m = _DIRECTIVE.match(part)
        if m is None:
            continue
        out[m[1].lower()] = _tonumber(m[2]) if m[2] is not None else True
    return out


def _num(v: Any) -> float | None:
    return v if isinstance(v, int | float) and not isinstance(v, bool) else None


def resource_ttl(cc: Directives, expires: list[bytes]) -> int:
    """s-maxage, else max-age, else Expires − now (the last Expires wins); never below 0."""
    max_age = _num(cc.get("s-maxage")) if "s-maxage" in cc else _num(cc.get("max-age"))
    if max_age is None and expires:
        try:
            when = parsedate_to_datetime(expires[-1].decode("latin-1")).timestamp()
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            max_age = int(when) - int(time.time())
    return int(max(max_age, 0)) if max_age is not None else 0


def parse_mime(value: str) -> tuple[str, str, dict[str, str]] | None:
    media, *params = value.split(";")
    typ, sep, sub = media.strip().partition("/")
    if not sep or not typ or not sub:
        return None
    out: dict[str, str] = {}
    for p in params:
        k, eq, v = p.partition("=")
        if eq and k.strip():
            out[k.strip().lower()] = v.strip().strip('"')
    return typ.strip().lower(), sub.strip().lower(), out


def content_type_matches(ctype: str, allowed: list[tuple[str, str, dict[str, str]]]) -> bool:
    parsed = parse_mime(ctype)
    if parsed is None:
        return False
    t, s, params = parsed
    for et, es, eparams in allowed:
        if (et == "*" or et == t) and (es == "*" or es == s) and eparams == params:
            return True
    return False


def _key_from(args: dict[str, Any], fields: list[str]) -> str:
    parts: list[str] = []
    for field in fields:
        arg = args.get(field)
        if arg is None or arg is False:
            continue
        if isinstance(arg, list):
            vals = sorted("true" if v is True else str(v) for v in arg)
            parts.append(field + "=" + ",".join(vals))
        elif arg is True:
            parts.append(field)
        else:
            parts.append(f"{field}={arg}")
    return ":".join(parts)


class HeaderArgs(dict[str, Any]):
    """kong.request.get_headers(): looked up case-insensitively, `_` read as `-`."""

    def __init__(self, req: Any) -> None:
        super().__init__()
        self.req = req

    def get(self, key: str, default: Any = None) -> Any:
        vals = self.req.get_headers(key.replace("_", "-"))
        if not vals:
            return default
        return vals[0] if len(vals) == 1 else list(vals)


def cache_key(req: Any, conf: dict[str, Any], ignore_uri_case: bool) -> str:
    """sha256 hex of `prefix|method|uri|params|headers` (Kong's cache_key.lua)."""
    route = req.route
    consumer_id = req.consumer_id
    route_id = route["id"] if route else None
    prefix = f"{consumer_id}:{route_id}" if consumer_id and route_id else route_id or "default"
    method = req.method_str
    # nginx's $request with everything from the first "?" removed (the HTTP version too).
    target = req.url.decode("latin-1")
    request_line = f"{method} {target} HTTP/{req.version}"  # HTTP/2.0 for h2, as nginx
    uri = request_line.split("?", 1)[0]
    if ignore_uri_case:
        uri = uri.lower()
    qs = req.query_override.decode("latin-1") if req.query_override is not None \
        else req.query_string
    params = parse_query(qs)
    vary_q = conf.get("vary_query_params") or []
    params_part = _key_from(params, vary_q if vary_q else sorted(params))
    vary_h = conf.get("vary_headers") or []
    headers_part = _key_from(HeaderArgs(req), vary_h) if vary_h else ""
    raw = f"{prefix}|{method}|{uri}|{params_part}|{headers_part}"
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()
