"""The JSON body transform of response-transformer (Kong's `body_transformer.lua`).

Top-level keys only: remove → rename → replace (if present and not false) → add (if absent
or false) → append (a string becomes [old, new], an array grows, anything else becomes
[new]). A configured value is a string, cast by `json_types[i]`: `number` (skipped when it
is not a number), `boolean` (`true` → true, anything else → false) or `string`. The result
is encoded as cjson does: compact, `/` escaped as `\\/`, non-ASCII kept as UTF-8.
A body that is not a JSON object is passed through unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from tollway.plugins.request_transformer.template import split_pair

Pair = tuple[str, Any]


def _lua_tonumber(s: str) -> int | float | None:
    t = s.strip()
    try:
        return int(t, 0) if t.lower().startswith(("0x", "-0x")) else int(t)
    except ValueError:
        pass
    try:
        f = float(t)
    except ValueError:
        return None
    return f if f == f and t.lower() not in ("inf", "-inf", "nan", "infinity") else None


def json_value(value: str | None, json_type: str | None) -> Any:
    """Kong's json_value: the string as cjson would quote it, unquoted again, then cast."""
    if value is None:
        return None
    v: Any = json.dumps(value, ensure_ascii=False)[1:-1].replace('\\"', '"')
    if json_type == "number":
        return _lua_tonumber(v)
    if json_type == "boolean":
        return v == "true"
    return v


def _values(op: dict[str, Any]) -> list[Pair]:
    types = op.get("json_types") or []
    out: list[Pair] = []
    for i, entry in enumerate(op["json"]):
        name, value = split_pair(entry)
        out.append((name, json_value(value if value != "" else None,
                                     types[i] if i < len(types) else None)))
    return out


def cjson_encode(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).replace(
        "/", "\\/").encode()


class JsonTransform:
    __slots__ = ("add", "append", "remove", "rename", "replace")

    @staticmethod
    def configured(conf: dict[str, Any]) -> bool:
        return any(conf[op]["json"] for op in ("remove", "rename", "replace", "add", "append"))

    def __init__(self, conf: dict[str, Any]) -> None:
        self.remove = [split_pair(e)[0] for e in conf["remove"]["json"]]
        self.rename = [split_pair(e) for e in conf["rename"]["json"]]
        self.replace = _values(conf["replace"])
        self.add = _values(conf["add"])
        self.append = _values(conf["append"])

    def apply(self, data: bytes) -> bytes | None:
        """The transformed body, or None to leave it as it is."""
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(doc, dict):
            return None
        for name in self.remove:
            doc.pop(name, None)
        for old, new in self.rename:
            if old in doc and new:
                doc[new] = doc.pop(old)
        for name, v in self.replace:
            if v is not None and name in doc and doc[name] is not False:
                doc[name] = v
        for name, v in self.add:
            if v is not None and (name not in doc or doc[name] is False):
                doc[name] = v
        for name, v in self.append:
            if v is None:
                continue
            cur = doc.get(name)
            if isinstance(cur, str):
                doc[name] = [cur, v]
            elif isinstance(cur, list):
                cur.append(v)
            else:
                doc[name] = [v]
        return cjson_encode(doc)
