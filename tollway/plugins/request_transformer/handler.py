"""request-transformer (Kong §3.10): rewrite the request before it goes upstream.

Kong's order: uri → method → headers → body → querystring; within each part
remove → rename → replace → add → append. Values may be templates (`template.py`), rendered
per request from the client's request; everything else is compiled here once per config.

Body transforms (`*.body`, `body.py`) make the route buffer the request body (`wants_body`,
only when the config has some) and apply to form-urlencoded, JSON and multipart bodies.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar
from urllib.parse import quote, unquote_plus

from tollway.dataplane.body_args import parse_args
from tollway.plugins.base import BuildContext, Plugin
from tollway.plugins.request_transformer.body import BodyTransform
from tollway.plugins.request_transformer.schema import config_schema
from tollway.plugins.request_transformer.template import Part, compile_template, render, split_pair

log = logging.getLogger("tollway.plugins.request-transformer")

Value = str | bool | list[Any]
Compiled = list[tuple[str, list[Part] | str | None]]


def _compile(entries: list[str], with_value: bool = True) -> Compiled:
    out: Compiled = []
    for entry in entries:
        name, value = split_pair(entry)
        out.append((name, compile_template(value) if with_value and value != "" else None))
    return out


def _append_value(current: Any, value: str) -> list[Any]:
    if isinstance(current, str):
        return [current, value]
    if isinstance(current, list):
        current.append(value)
        return current
    return [value]


def parse_query(qs: str) -> dict[str, Value]:
    """ngx.req.get_uri_args: `a` → True, `a=` → "", repeated names → list."""
    return parse_args(qs, unquote_plus)


def _esc(s: str) -> str:
    return quote(s, safe="-._~")


def encode_query(args: dict[str, Value]) -> str:
    """kong.service.request.set_query: keys sorted, `true` a bare key, lists repeated,
    percent-encoded (space as %20)."""
    out: list[str] = []
    for key in sorted(args):
        value = args[key]
        for v in value if isinstance(value, list) else [value]:
            if v is True:
                out.append(_esc(key))
            elif v is False or v is None:
                continue
            else:
                out.append(_esc(key) + "=" + _esc(str(v)))
    return "&".join(out)


_PATH_SAFE = "/-._~!$&'()*+,;=:@%"


class RequestTransformer(Plugin):
    name = "request-transformer"
    priority = 801
    version = "3.9.0"
    config_schema = config_schema
    protocols: ClassVar[tuple[str, ...] | None] = ("grpc", "grpcs", "http", "https")

    def __init__(self, config: dict[str, Any], entity: dict[str, Any],
                 ctx: BuildContext | None = None) -> None:
        super().__init__(config, entity, ctx)
        c = config
        uri = c["replace"].get("uri")
        self.uri = compile_template(uri) if uri else None
        method = c.get("http_method")
        self.method = method.upper().encode() if method else None
        self.h_remove = [split_pair(e)[0].lower() for e in c["remove"]["headers"]]
        self.h_rename = [(o.lower(), (n or "").lower())
                         for o, n in ((split_pair(e)) for e in c["rename"]["headers"])]
        self.h_replace = _compile(c["replace"]["headers"])
        self.h_add = _compile(c["add"]["headers"])
        self.h_append = _compile(c["append"]["headers"])
        self.has_headers = bool(self.h_remove or self.h_rename or self.h_replace
                                or self.h_add or self.h_append)
        self.q_remove = [split_pair(e)[0] for e in c["remove"]["querystring"]]
        self.q_rename = [split_pair(e) for e in c["rename"]["querystring"]]
        self.q_replace = _compile(c["replace"]["querystring"])
        self.q_add = _compile(c["add"]["querystring"])
        self.q_append = _compile(c["append"]["querystring"])
        self.has_query = bool(self.q_remove or self.q_rename or self.q_replace
                              or self.q_add or self.q_append)
        body = any(c[op]["body"] for op in ("remove", "rename", "replace", "add", "append"))
        self.body = BodyTransform(
            [split_pair(e)[0] for e in c["remove"]["body"]],
            [(o, n or "") for o, n in (split_pair(e) for e in c["rename"]["body"])],
            _compile(c["replace"]["body"]), _compile(c["add"]["body"]),
            _compile(c["append"]["body"])) if body else None

    def wants_body(self) -> bool:
        return self.body is not None

    def access(self, req: Any) -> None:
        env: dict[str, Any] = {}
        if self.uri is not None:
            path = render(self.uri, req, env)
            req.set_upstream_path(quote(path, safe=_PATH_SAFE))
        if self.method is not None:
            req.set_method(self.method)
        if self.has_headers:
            self._headers(req, env)
        if self.body is not None:
            self.body.apply(req, env)
        if self.has_query:
            self._query(req, env)

    def _headers(self, req: Any, env: dict[str, Any]) -> None:
        # name (lower-cased) → (name as sent, values); like kong.request.get_headers()
        headers: dict[str, tuple[str, list[str]]] = {}
        for raw_name, raw_value in req.headers:
            name = raw_name.decode("latin-1")
            lname = name.lower()
            if lname == "host":
                continue
            entry = headers.get(lname)
            if entry is None:
                headers[lname] = (lname, [raw_value.decode("latin-1")])
            else:
                entry[1].append(raw_value.decode("latin-1"))
        cleared: set[str] = set()
        changed: dict[str, None] = {}
        for name in self.h_remove:
            if headers.pop(name, None) is not None:
                cleared.add(name)
        for old, new in self.h_rename:
            value = headers.pop(old, None)
            if value is not None:
                headers[new] = (new, value[1])
                changed[new] = None
                cleared.add(old)
        for name, tpl in self.h_replace:
            lname = name.lower()
            if lname in headers or lname == "host":
                headers[lname] = (lname, [render(tpl or "", req, env)])
                changed[lname] = None
        for name, tpl in self.h_add:
            lname = name.lower()
            if lname not in headers and lname != "host":
                headers[lname] = (name, [render(tpl or "", req, env)])
                changed[lname] = None
        for name, tpl in self.h_append:
            lname = name.lower()
            current = headers.get(lname)
            values = list(current[1]) if current is not None else []
            if lname != "host":
                values.append(render(tpl or "", req, env))
                headers[lname] = (name, values)  # Kong keeps the configured case
                changed[lname] = None
        for lname in cleared:
            if lname not in headers:
                req.clear_header(lname)
        for lname in changed:
            entry = headers.get(lname)
            if entry is None:
                continue
            name, values = entry
            req.set_header(name, values[0])
            for v in values[1:]:
                req.add_header(name, v)

    def _query(self, req: Any, env: dict[str, Any]) -> None:
        qs: dict[str, Value] = parse_query(req.query_string)
        for name in self.q_remove:
            qs.pop(name, None)
        for old, new in self.q_rename:
            value = qs.pop(old, None)
            if value is None:
                qs.pop(new, None)
            else:
                qs[new] = value
        for name, tpl in self.q_replace:
            if name in qs:
                qs[name] = render(tpl or "", req, env)
        for name, tpl in self.q_add:
            if name not in qs:
                qs[name] = render(tpl or "", req, env)
        for name, tpl in self.q_append:
            qs[name] = _append_value(qs.get(name), render(tpl or "", req, env))
        req.set_upstream_query(encode_query(qs))
