"""Kong's Admin API error bodies (§5.5 of the Kong reference) and the JSON response type.

Every error an endpoint raises is an `AdminError`; the app's exception handler renders it.
Coded errors are `{"code", "name", "message", "fields"}`; the others `{"message"}`. Admin
responses never carry a request_id.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from tollway.controlplane.store import PreconditionFailed
    from tollway.node.supervisor import Supervisor

log = logging.getLogger("tollway.admin")

JSON_TYPE = "application/json; charset=utf-8"

# code -> (name, HTTP status): kong/db/errors.lua codes, statuses as Kong's endpoints map
# them (3 and 5 are 409, as Kong's own integration tests expect)
CODES: dict[int, tuple[str, int]] = {
    1: ("invalid primary key", 400),
    2: ("schema violation", 400),
    3: ("primary key violation", 409),
    4: ("foreign key violation", 400),
    5: ("unique constraint violation", 409),
    6: ("not found", 404),
    7: ("invalid offset", 400),
    9: ("invalid size", 400),
    11: ("invalid options", 400),
    12: ("operation unsupported", 405),
    13: ("foreign keys unresolved", 400),
    14: ("invalid declarative configuration", 400),
}


class KongJSON(JSONResponse):
    media_type = JSON_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def message(status: int, text: str) -> KongJSON:
    return KongJSON({"message": text}, status_code=status)


class AdminError(Exception):
    """An error answer. `code` None means a plain `{"message": ...}` body."""

    def __init__(self, status: int, text: str, code: int | None = None,
                 fields: Any = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.code = code
        self.fields = fields

    def response(self) -> KongJSON:
        if self.code is None:
            return message(self.status, self.text)
        body: dict[str, Any] = {"code": self.code, "name": CODES[self.code][0],
                                "message": self.text}
        if self.fields is not None:
            body["fields"] = self.fields
        return KongJSON(body, status_code=self.status)


def coded(code: int, text: str, fields: Any = None) -> AdminError:
    return AdminError(CODES[code][1], text, code, fields)


def not_found() -> AdminError:
    return AdminError(404, "Not found")


# -- Lua-style rendering of values inside messages ----------------------------------------


def lua_value(value: Any) -> str:
    """A value as Kong prints it in messages (`"x"`, `null`, `{id="..."}`)."""
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={lua_value(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "{" + ",".join(lua_value(v) for v in value) + "}"
    return str(value)


def _pretty(value: Any) -> str:
    if isinstance(value, dict | list):
        return lua_value(value)
    return str(value)


def schema_violation(fields: dict[str, Any]) -> AdminError:
    """Kong's code-2 body: `schema violation (f: msg)` or `N schema violations (a; b)` with
    `@entity` messages first, then the fields sorted, a nested record's fields as
    `parent.child: msg`."""
    parts: list[str] = list(fields.get("@entity") or [])
    for key in sorted(k for k in fields if k != "@entity"):
        value = fields[key]
        if isinstance(value, dict):
            for sub in sorted(value, key=str):
                if sub == "@entity":
                    parts.extend(f"{key}: {m}" for m in value[sub])
                else:
                    parts.append(f"{key}.{sub}: {_pretty(value[sub])}")
        else:
            parts.append(f"{key}: {_pretty(value)}")
    if len(parts) == 1:
        text = f"schema violation ({parts[0]})"
    else:
        text = f"{len(parts)} schema violations ({'; '.join(parts)})"
    return coded(2, text, fields)


def unique_violation(values: dict[str, Any]) -> AdminError:
    return coded(5, f"UNIQUE violation detected on '{lua_value(values)}'", values)


def primary_key_violation(ident: str) -> AdminError:
    return coded(3, f"primary key violation on key '{{id=\"{ident}\"}}'", {"id": ident})


def foreign_key_violation(field: str, ref: str, pk: dict[str, Any]) -> AdminError:
    text = (f"the foreign key '{lua_value(pk)}' does not reference an existing "
            f"'{ref}' entity.")
    return coded(4, text, {field: text})


def foreign_keys_unresolved(field: str, ref: str, key: dict[str, Any]) -> AdminError:
    text = (f"the foreign key cannot be resolved with '{lua_value(key)}' for an existing "
            f"'{ref}' entity")
    return coded(13, f"foreign keys unresolved (field '{field}': {text})", {field: text})


def referenced_by(child: str, parent: str) -> AdminError:
    return coded(4, f"an existing '{child}' entity references this '{parent}' entity",
                 {"@referenced_by": child})


def operation_unsupported(verb: str, entity: str) -> AdminError:
    return coded(12, f"cannot {verb} '{entity}' entities when not using a database")


# -- the config store's refusals -----------------------------------------------------------


def precondition_failed(exc: PreconditionFailed) -> KongJSON:
    """412: If-Match named a config that is not the current one; `ETag` is the current."""
    return KongJSON({"message": str(exc)}, status_code=412,
                    headers={"ETag": f'"{exc.current_hash}"'})


def database_unavailable(node: Supervisor, exc: Exception) -> KongJSON:
    """503: the database cannot be reached, so nothing can be stored (or read from it).
    The node keeps serving its last config; say which one, and that it is safe to retry."""
    log.error("config store: %s", exc)
    where = node.store.description if node.store is not None else "the database"
    return KongJSON({"message": (
        f"the database is unreachable ({where}); nothing was changed. This node keeps "
        f"serving revision {node.revision} (hash {node.config.hash}); retry when the "
        f"database is back. Cause: {exc}")}, status_code=503, headers={"Retry-After": "5"})
