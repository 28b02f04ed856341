"""Request bodies as arguments — Kong's `kong.request.get_body` / `kong.service.request.
set_body` for the three types they know, for plugins on routes that buffer the body.

    kind = body_kind(content_type)            "form" | "json" | "multipart" | None
    args, err = decode(kind, body, ctype)     form: {name: str | True | [values]}
                                              json: the decoded document
                                              multipart: Multipart (ordered parts)
    data = encode(kind, args)                 bytes to pass to req.set_body

Forms are re-encoded with sorted keys (kong.tools.utils.encode_args); JSON compactly with
`/` escaped, as lua-cjson does; a multipart body keeps the parts it did not touch byte for
byte, with its boundary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote_plus

FORM = "form"
JSON = "json"
MULTIPART = "multipart"

_BOUNDARY = re.compile(rb';\s*boundary=(?:"([^"]+)"|([^;\s]+))', re.I)
_NAME = re.compile(rb'\bname="([^"]*)"|\bname=([^;\s]+)', re.I)


def body_kind(ctype: str | bytes | None) -> str | None:
    if not ctype:
        return None
    c = (ctype.decode("latin-1") if isinstance(ctype, bytes) else ctype).lower()
    if "application/x-www-form-urlencoded" in c:
        return FORM
    if "multipart/form-data" in c:
        return MULTIPART
    if "application/json" in c:
        return JSON
    return None


class Multipart:
    """multipart/form-data as ordered parts: (name, raw part headers, value)."""

    def __init__(self, boundary: bytes, parts: list[tuple[str, bytes, bytes]]) -> None:
        self.boundary = boundary
        self.parts = parts

    def values(self, name: str) -> list[str]:
        return [v.decode("utf-8", "surrogateescape") for n, _, v in self.parts if n == name]

    def __contains__(self, name: object) -> bool:
        return any(n == name for n, _, _ in self.parts)

    def delete(self, name: str) -> None:
        self.parts = [p for p in self.parts if p[0] != name]

    def set(self, name: str, value: str) -> None:
        """Replace every part called `name` by one simple part (appended at the end)."""
        self.delete(name)
        self.add(name, value)

    def add(self, name: str, value: str) -> None:
        head = b'Content-Disposition: form-data; name="' + name.encode() + b'"'
        self.parts.append((name, head, value.encode("utf-8", "surrogateescape")))

    def rename(self, old: str, new: str) -> None:
        self.parts = [(new, _NAME.sub(b'name="' + new.encode() + b'"', h, count=1), v)
                      if n == old else (n, h, v) for n, h, v in self.parts]

    def encode(self) -> bytes:
        b = self.boundary
        out = [b"--" + b + b"\r\n" + h + b"\r\n\r\n" + v + b"\r\n" for _, h, v in self.parts]
        return b"".join(out) + b"--" + b + b"--\r\n"


def parse_multipart(body: bytes, ctype: bytes) -> Multipart | None:
    m = _BOUNDARY.search(ctype)
    if m is None:
        return None
    boundary = m.group(1) or m.group(2)
    delim = b"--" + boundary
    parts: list[tuple[str, bytes, bytes]] = []
    for chunk in body.split(delim)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, sep, value = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        if value.endswith(b"\r\n"):
            value = value[:-2]
        name = None
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-disposition:"):
                nm = _NAME.search(line)
                if nm is not None:
                    name = (nm.group(1) if nm.group(1) is not None else nm.group(2))
        if name is None:
            continue
        parts.append((name.decode("utf-8", "surrogateescape"), head, value))
    return Multipart(boundary, parts)


def parse_form(body: bytes) -> dict[str, Any]:
    """ngx.req.get_post_args: repeated names → list, a bare name → True."""
    return parse_args(body.decode("latin-1"), _unq)


def parse_args(text: str, unquote: Callable[[str], str]) -> dict[str, Any]:
    """`a=1&a=2&b&c=` → {"a": ["1", "2"], "b": True, "c": ""} (nginx's get_*_args shape);
    `unquote` decodes one name or value."""
    args: dict[str, Any] = {}
    for piece in text.split("&"):
        if not piece:
            continue
        k, eq, v = piece.partition("=")
        key = unquote(k)
        if not key:
            continue
        val: str | bool = unquote(v) if eq else True
        cur = args.get(key)
        if cur is None:
            args[key] = val
        elif isinstance(cur, list):
            cur.append(val)
        else:
            args[key] = [cur, val]
    return args


def _unq(s: str) -> str:
    return unquote_plus(s.encode("latin-1").decode("utf-8", "surrogateescape"))


def _esc(s: str) -> str:
    return quote(s, safe="-._~")


def encode_form(args: dict[str, Any]) -> bytes:
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
    return "&".join(out).encode()


def encode_json(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).replace(
        "/", "\\/").encode()


def decode(kind: str | None, body: bytes, ctype: bytes | None) -> tuple[Any, str | None]:
    """(args, None), or (None, error) when the body cannot be read as `kind`."""
    if kind == FORM:
        return parse_form(body), None
    if kind == JSON:
        try:
            return json.loads(body), None
        except ValueError:
            return None, "invalid json body"
    if kind == MULTIPART and ctype is not None:
        mp = parse_multipart(body, ctype)
        return (mp, None) if mp is not None else (None, "missing boundary")
    return None, "unsupported content type"


def encode(kind: str, args: Any) -> bytes:
    if kind == FORM:
        return encode_form(args)
    if kind == JSON:
        return encode_json(args)
    assert isinstance(args, Multipart)
    return args.encode()
