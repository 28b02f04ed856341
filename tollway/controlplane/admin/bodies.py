"""Admin API request bodies (§5.1 of the Kong reference): JSON, or form-urlencoded with
Kong's nested keys (`config.minute=5`, `paths[]=/a`, `paths[1]=/a`, repeated keys), whose
string values are converted to the types the entity's schema expects."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from tollway.config.entities import ENTITIES
from tollway.config.schema import Field, Record
from tollway.controlplane.admin.errors import AdminError
from tollway.plugins import registry

FORM = "application/x-www-form-urlencoded"
_PART = re.compile(r"\[(\d*)\]")


async def read(request: Request, entity: str) -> dict[str, Any]:
    """The request body as a dict (empty when there is none); AdminError 400 for JSON that
    does not parse, 415 for a content type Kong does not take."""
    raw = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not raw.strip():
        return {}
    if ctype == FORM:
        return coerce_entity(entity, parse_form(raw.decode("utf-8", "replace")))
    if ctype in ("application/json", "") or ctype.endswith("+json"):
        try:
            body = json.loads(raw)
        except ValueError:
            raise AdminError(400, "Cannot parse JSON body") from None
        if not isinstance(body, dict):
            raise AdminError(400, "Cannot parse JSON body")
        return body
    # multipart/form-data would need python-multipart: not taken (docs/admin-api.md)
    raise AdminError(415, "")


def _split(key: str) -> list[str | int | None]:
    """`config.minute` → ["config", "minute"]; `paths[]` → ["paths", None];
    `paths[2]` → ["paths", 1] (Kong's form indexes are 1-based)."""
    out: list[str | int | None] = []
    for part in key.split("."):
        head = part.split("[", 1)[0]
        if head:
            out.append(head)
        for index in _PART.findall(part):
            out.append(int(index) - 1 if index else None)
    return out


def parse_form(text: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        parts = _split(key)
        if not parts or not isinstance(parts[0], str):
            continue
        node: Any = body
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt = None if last else parts[i + 1]
            empty: Any = [] if (nxt is None or isinstance(nxt, int)) and not last else {}
            if isinstance(node, list):
                if part is None or (isinstance(part, int) and part >= len(node)):
                    node.append(value if last else empty)
                    node = node[-1]
                elif isinstance(part, int) and part >= 0:
                    if last:
                        node[part] = value
                    node = node[part]
                else:
                    break
                continue
            if not isinstance(node, dict) or not isinstance(part, str):
                break
            if last:
                if part in node:  # a repeated key is an array
                    prev = node[part]
                    node[part] = [*prev, value] if isinstance(prev, list) else [prev, value]
                else:
                    node[part] = value
            else:
                node = node.setdefault(part, empty)
    return body


def _coerce(f: Field, value: Any) -> Any:
    if isinstance(value, str):
        if f.type == "integer" and re.fullmatch(r"-?\d+", value):
            return int(value)
        if f.type == "number":
            try:
                return float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                return value
        if f.type == "boolean" and value in ("true", "false"):
            return value == "true"
        if f.type in ("array", "set"):
            value = [value] if value else []
    if f.type in ("array", "set") and isinstance(value, list) and f.elements is not None:
        return [_coerce(f.elements, v) for v in value]
    if f.type == "record" and isinstance(value, dict) and f.record is not None:
        return coerce_record(f.record, value)
    if f.type == "map" and isinstance(value, dict) and f.values is not None:
        return {k: _coerce(f.values, v) for k, v in value.items()}
    return value


def coerce_record(record: Record, data: dict[str, Any]) -> dict[str, Any]:
    fields = dict(record.fields)
    for sub in record.subschemas.values():  # e.g. route protocols: same types across them
        for name, f in sub.fields.items():
            fields.setdefault(name, f)
    return {k: (_coerce(fields[k], v) if k in fields else v) for k, v in data.items()}


def coerce_entity(entity: str, data: dict[str, Any]) -> dict[str, Any]:
    out = coerce_record(ENTITIES[entity].schema, data)
    if entity == "plugins" and isinstance(out.get("config"), dict):
        name = out.get("name")
        plugin = registry.get(name) if isinstance(name, str) else None
        if plugin is not None:
            out["config"] = coerce_record(plugin.config_schema, out["config"])
    return out
