"""Admin API writes as pure functions over a config's entity lists (no I/O, no HTTP).

An Admin API write never edits the running config in place: the endpoint computes the new
entity lists here, validates the whole result with `tollway.config.declarative.validate`
(the rules a declarative file obeys) and hands it to `Supervisor.apply` — all or nothing.

Kong's delete rules (§5.2 of the Kong reference): plugins, targets and consumer credentials
go with their parent (`on_delete = "cascade"`); any other reference (a route's service, an
sni's certificate, a service's client certificate) blocks the delete.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from typing import Any

from tollway.config.entities import ENTITIES, ENTITY_NAMES, normalize_target

Entities = dict[str, list[dict[str, Any]]]

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)

# (child entity, foreign field) pairs deleted together with the entity they reference
CASCADE = {("plugins", "route"), ("plugins", "service"), ("plugins", "consumer"),
           ("targets", "upstream"), ("keyauth_credentials", "consumer"),
           ("jwt_secrets", "consumer")}


class Referenced(Exception):
    """The entity cannot be deleted: `child` entities still reference it."""

    def __init__(self, child: str) -> None:
        super().__init__(child)
        self.child = child


class Conflict(Exception):
    """The entity clashes with an existing one: `kind` is "pk" (same id) or "unique"
    (`values` are the clashing fields, as Kong prints them)."""

    def __init__(self, kind: str, values: dict[str, Any]) -> None:
        super().__init__(kind)
        self.kind = kind
        self.values = values


class BadOffset(ValueError):
    pass


def is_uuid(value: str) -> bool:
    return bool(_UUID.match(value))


def fk_id(value: Any) -> str | None:
    if isinstance(value, dict):
        ident = value.get("id")
        return ident.lower() if isinstance(ident, str) else None
    return None


def references(name: str) -> list[tuple[str, str]]:
    """(child entity, field) pairs whose foreign key points at entity type `name`."""
    return [(child, fname) for child, spec in ENTITIES.items()
            for fname, ref in spec.foreign_fields.items() if ref == name]


def find(entities: Entities, name: str, key: str,
         scope: tuple[str, str] | None = None) -> dict[str, Any] | None:
    """An entity by id (a UUID) or by its endpoint key (services/routes/upstreams/snis by
    `name`, consumers by `username`, credentials by `key`, plugins by `instance_name`,
    targets by `target`). `scope` = (foreign field, parent id) restricts the search to one
    parent's children (`/upstreams/{u}/targets/{t}`)."""
    rows = entities.get(name, [])
    if scope is not None:
        rows = [r for r in rows if fk_id(r.get(scope[0])) == scope[1].lower()]
    if is_uuid(key):
        wanted = key.lower()
        for row in rows:
            if str(row.get("id", "")).lower() == wanted:
                return row
        if name != "targets":
            return None
    spec = ENTITIES[name]
    if spec.endpoint_key is None:
        return None
    if name == "targets":
        key = normalize_target(key) or key
    for row in rows:
        if row.get(spec.endpoint_key) == key:
            return row
    return None


def children(entities: Entities, name: str, ident: str, child: str,
             field: str) -> list[dict[str, Any]]:
    del name  # the parent's type is implied by `field`; kept for call-site readability
    wanted = ident.lower()
    return [r for r in entities.get(child, []) if fk_id(r.get(field)) == wanted]


def _copy(entities: Entities) -> Entities:
    return {n: list(entities.get(n, [])) for n in ENTITY_NAMES}


def upsert(entities: Entities, name: str, entity: dict[str, Any]) -> Entities:
    """The entity lists with `entity` added, or replacing the one with the same id (kept in
    its place, so a config's order stays stable)."""
    out = _copy(entities)
    rows = out[name]
    ident = str(entity["id"]).lower()
    for i, row in enumerate(rows):
        if str(row.get("id", "")).lower() == ident:
            rows[i] = entity
            return out
    rows.append(entity)
    return out


def delete(entities: Entities, name: str, ident: str) -> Entities:
    """The entity lists without entity `ident` and everything that cascades with it; raises
    `Referenced` when a non-cascading reference still points at it."""
    doomed: dict[str, set[str]] = {n: set() for n in ENTITY_NAMES}
    pending = [(name, ident.lower())]
    while pending:
        ename, eid = pending.pop()
        if eid in doomed[ename]:
            continue
        doomed[ename].add(eid)
        for child, field in references(ename):
            for row in entities.get(child, []):
                if fk_id(row.get(field)) != eid:
                    continue
                if (child, field) not in CASCADE:
                    raise Referenced(child)
                pending.append((child, str(row["id"]).lower()))
    return {n: [r for r in entities.get(n, []) if str(r.get("id", "")).lower() not in doomed[n]]
            for n in ENTITY_NAMES}


def check_conflicts(entities: Entities, name: str, entity: dict[str, Any],
                    replacing: str | None = None) -> None:
    """Raise `Conflict` if `entity` would share an id, endpoint key, unique field or cache
    key with another entity (`replacing`: the id of the entity it replaces)."""
    spec = ENTITIES[name]
    ident = str(entity.get("id", "")).lower()
    others = [r for r in entities.get(name, [])
              if str(r.get("id", "")).lower() != (replacing or "").lower()]
    for row in others:
        if str(row.get("id", "")).lower() == ident:
            raise Conflict("pk", {"id": entity["id"]})
    unique = list(spec.unique)
    if spec.endpoint_key and spec.endpoint_key_unique:
        unique.insert(0, spec.endpoint_key)
    for fname in unique:
        value = entity.get(fname)
        if value is None:
            continue
        for row in others:
            if row.get(fname) == value:
                raise Conflict("unique", {fname: value})
    if spec.cache_key:
        def key_of(row: dict[str, Any]) -> tuple[Any, ...]:
            return tuple(fk_id(row.get(k)) if spec.foreign_fields.get(k) else row.get(k)
                         for k in spec.cache_key or ())

        mine = key_of(entity)
        for row in others:
            if key_of(row) == mine:
                raise Conflict("unique", {k: entity.get(k) for k in spec.cache_key})


def missing_references(entities: Entities, name: str,
                       entity: dict[str, Any]) -> tuple[str, str, str] | None:
    """The first foreign key of `entity` that names no existing entity:
    (field, referenced entity, id)."""
    for fname, ref in ENTITIES[name].foreign_fields.items():
        ident = fk_id(entity.get(fname))
        if ident is None:
            continue
        if not any(str(r.get("id", "")).lower() == ident for r in entities.get(ref, [])):
            return fname, ref, entity[fname]["id"]
    return None


# -- listing: tags and pagination ---------------------------------------------------------


def parse_tags(expr: str) -> tuple[list[str], bool]:
    """`a,b` (all of them) or `a/b` (any of them) → (tags, match_all); ValueError with Kong's
    option message on a mixed or too long filter."""
    if "," in expr and "/" in expr:
        raise ValueError("invalid filter syntax")
    match_all = "/" not in expr
    tags = [t for t in re.split(r"[,/]", expr)]
    if any(not t for t in tags):
        raise ValueError("invalid filter syntax")
    if len(tags) > 5:
        raise ValueError("cannot query more than 5 tags")
    return tags, match_all


def filter_tags(rows: Iterable[dict[str, Any]], tags: list[str],
                match_all: bool) -> list[dict[str, Any]]:
    wanted = set(tags)
    out = []
    for row in rows:
        have = set(row.get("tags") or ())
        if (wanted <= have) if match_all else (wanted & have):
            out.append(row)
    return out


def encode_offset(last_id: str) -> str:
    """Kong's Postgres offset token: base64 (no padding) of the JSON array of the last
    row's primary key."""
    raw = json.dumps([last_id], separators=(",", ":")).encode()
    return base64.b64encode(raw).decode().rstrip("=")


def decode_offset(token: str) -> str:
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadOffset("bad base64 encoding") from None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadOffset("bad json encoding") from None
    if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], str)):
        raise BadOffset("bad json encoding")
    return value[0]


def page(rows: list[dict[str, Any]], size: int, after: str | None,
         key: str = "id") -> tuple[list[dict[str, Any]], str | None]:
    """One page of `rows` ordered by `key` (the primary key, as Kong's Postgres strategy
    orders) after the row whose key is `after`; returns (rows, the next offset or None)."""
    ordered = sorted(rows, key=lambda r: str(r.get(key, "")))
    if after is not None:
        ordered = [r for r in ordered if str(r.get(key, "")) > after]
    chunk = ordered[:size]
    more = len(ordered) > size
    return chunk, (encode_offset(str(chunk[-1].get(key, ""))) if more and chunk else None)
