"""request-transformer's body transforms (Kong's `transform_*_body` in access.lua).

Form-urlencoded and JSON bodies: remove → rename → replace (those three only when the body
is not empty) → add (when absent) → append (always; a value becomes a list). Multipart:
remove → rename → replace → add. The body is re-encoded only when something changed; a
JSON body that does not parse (and is not empty) is left alone.
"""

from __future__ import annotations

from typing import Any

from tollway.dataplane import body_args
from tollway.plugins.request_transformer.template import Part, render

Compiled = list[tuple[str, list[Part] | str | None]]


def _append(current: Any, value: str) -> list[Any]:
    if isinstance(current, list):
        current.append(value)
        return current
    if current is None:
        return [value]
    return [current, value]


class BodyTransform:
    def __init__(self, remove: list[str], rename: list[tuple[str, str]],
                 replace: Compiled, add: Compiled, append: Compiled) -> None:
        self.remove = remove
        self.rename = rename
        self.replace = replace
        self.add = add
        self.append = append

    def apply(self, req: Any, env: dict[str, Any]) -> None:
        ctype = req.req_ctype
        kind = body_args.body_kind(ctype)
        if kind is None:
            return
        body: bytes = req.body or b""
        if kind == body_args.MULTIPART:
            out = self._multipart(req, env, body, ctype)
        else:
            out = self._args(req, env, kind, body)
        if out is not None:
            req.set_body(out)

    def _args(self, req: Any, env: dict[str, Any], kind: str, body: bytes) -> bytes | None:
        args: Any = {}
        if body:
            args, err = body_args.decode(kind, body, None)
            if err is not None or not isinstance(args, dict):
                return None
        changed = False
        if body:
            for name in self.remove:
                if name in args:
                    del args[name]
                    changed = True
            for old, new in self.rename:
                if old in args:
                    args[new] = args.pop(old)
                    changed = True
            for name, tpl in self.replace:
                if name in args:
                    args[name] = render(tpl or "", req, env)
                    changed = True
        for name, tpl in self.add:
            if name not in args:
                args[name] = render(tpl or "", req, env)
                changed = True
        for name, tpl in self.append:
            args[name] = _append(args.get(name), render(tpl or "", req, env))
            changed = True
        return body_args.encode(kind, args) if changed else None

    def _multipart(self, req: Any, env: dict[str, Any], body: bytes,
                   ctype: bytes) -> bytes | None:
        mp = body_args.parse_multipart(body, ctype)
        if mp is None:
            return None
        changed = False
        if body:
            for name in self.remove:
                if name in mp:
                    mp.delete(name)
                    changed = True
            for old, new in self.rename:
                if old in mp:
                    mp.rename(old, new)
                    changed = True
            for name, tpl in self.replace:
                if name in mp:
                    mp.set(name, render(tpl or "", req, env))
                    changed = True
        for name, tpl in self.add:
            if name not in mp:
                mp.add(name, render(tpl or "", req, env))
                changed = True
        return mp.encode() if changed else None
