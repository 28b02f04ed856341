"""response-transformer (Kong §3.11): rewrite response headers, and JSON bodies.

Headers (response phase): remove → rename (if present) → replace (if present) → add (if
absent) → append (always). "Present" is judged on the headers as they were before this
plugin ran, as Kong does. With a JSON body transform configured and a JSON response,
`Content-Length` is removed (the client gets the body chunked) and the body phase buffers
the chunks, then emits the transformed document on the last one (`json_body.py`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from tollway.plugins.base import BuildContext, HeaderList, Plugin
from tollway.plugins.request_transformer.template import split_pair
from tollway.plugins.response_transformer.json_body import JsonTransform
from tollway.plugins.response_transformer.schema import config_schema


def _pairs(entries: list[str]) -> list[tuple[bytes, bytes | None]]:
    out: list[tuple[bytes, bytes | None]] = []
    for e in entries:
        name, value = split_pair(e)
        out.append((name.encode("latin-1", "replace"),
                    value.encode("latin-1", "replace") if value != "" else None))
    return out


def is_json(ctype: bytes | None) -> bool:
    return ctype is not None and b"application/json" in ctype.lower()


class ResponseTransformer(Plugin):
    name = "response-transformer"
    priority = 800
    version = "3.9.0"
    config_schema = config_schema
    protocols: ClassVar[tuple[str, ...] | None] = ("grpc", "grpcs", "http", "https")

    def __init__(self, config: dict[str, Any], entity: dict[str, Any],
                 ctx: BuildContext | None = None) -> None:
        super().__init__(config, entity, ctx)
        c = config
        self.remove = [split_pair(e)[0].encode("latin-1", "replace")
                       for e in c["remove"]["headers"]]
        self.rename = _pairs(c["rename"]["headers"])
        self.replace = _pairs(c["replace"]["headers"])
        self.add = _pairs(c["add"]["headers"])
        self.append = _pairs(c["append"]["headers"])
        self.needs_snapshot = bool(self.rename or self.replace or self.add)
        self.json = JsonTransform(c) if JsonTransform.configured(c) else None

    def response(self, req: Any, headers: HeaderList) -> None:
        snapshot: dict[bytes, list[bytes]] = {}
        if self.needs_snapshot:
            for n, v in headers.items:
                snapshot.setdefault(n.lower(), []).append(v)
        original_ctype = headers.get(b"content-type")
        for name in self.remove:
            headers.remove(name)
        for old, new in self.rename:
            values = snapshot.get(old.lower())
            if values is not None and new is not None:
                headers.remove(new)
                for v in values:
                    headers.add(new, v)
                headers.remove(old)
        for name, value in self.replace:
            if value is not None and name.lower() in snapshot:
                headers.set(name, value)
        for name, value in self.add:
            if value is not None and name.lower() not in snapshot:
                headers.set(name, value)
        for name, value in self.append:
            if value is not None:
                headers.add(name, value)
        if self.json is not None:
            if is_json(original_ctype):
                headers.remove(b"content-length")
            if is_json(headers.get(b"content-type")):
                req.ctx[self.name] = []

    def body(self, req: Any, chunk: bytes, last: bool) -> bytes:
        buf: list[bytes] | None = req.ctx.get(self.name)
        if buf is None or self.json is None:
            return chunk
        if chunk:
            buf.append(chunk)
        if not last:
            return b""
        data = b"".join(buf)
        buf.clear()
        out = self.json.apply(data)
        return data if out is None else out
