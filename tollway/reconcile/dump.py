"""A running ``Config`` → a decK-style state file (§6.6 of the reference).

Nesting: routes under their service, service/route/consumer-scoped plugins under that
entity, targets under upstreams, credentials under consumers, snis under certificates.
Global plugins and plugins with more than one association stay top-level and name what they
point to. Arrays sorted by name (then id). Ids dropped for entities that have another
identity unless ``with_id``; ``skip_defaults`` drops values equal to the schema default.
"""

from __future__ import annotations

import copy
from typing import Any

from tollway.config.entities import ENTITIES
from tollway.config.model import Config
from tollway.reconcile.state import State, foreign_fields, has_tags

_CHILDREN = {"services": ("routes", "plugins"), "routes": ("plugins",),
             "consumers": ("plugins", "keyauth_credentials", "jwt_secrets"),
             "upstreams": ("targets",), "certificates": ("snis",)}
_PARENT_FIELD = {"routes": "service", "targets": "upstream", "snis": "certificate",
                 "keyauth_credentials": "consumer", "jwt_secrets": "consumer"}
TOP_LEVEL = ("services", "routes", "consumers", "plugins", "upstreams", "certificates",
             "ca_certificates")


def _sort_key(entity: str, row: dict[str, Any]) -> tuple[str, str]:
    name = row.get("name") or row.get("username") or row.get("target") or row.get(
        "custom_id") or ""
    if entity == "plugins":
        name = row.get("instance_name") or row.get("name") or ""
    return (str(name), str(row.get("id", "")))


def _plugin_parent(row: dict[str, Any]) -> tuple[str, str] | None:
    links = [(fk, row[fk]["id"]) for fk in ("service", "route", "consumer")
             if isinstance(row.get(fk), dict)]
    if len(links) != 1:
        return None
    fk, ident = links[0]
    return {"service": "services", "route": "routes", "consumer": "consumers"}[fk], ident


class _Defaults:
    def __init__(self) -> None:
        self.cache: dict[tuple[str, str | None], dict[str, Any]] = {}

    def of(self, entity: str, row: dict[str, Any]) -> dict[str, Any]:
        plugin = row.get("name") if entity == "plugins" else None
        key = (entity, plugin)
        if key not in self.cache:
            spec = ENTITIES[entity]
            self.cache[key] = spec.validate({"name": plugin} if plugin else {}, nested=True)[0]
        return self.cache[key]

    def strip(self, entity: str, row: dict[str, Any]) -> dict[str, Any]:
        defaults = self.of(entity, row)
        out = {}
        for k, v in row.items():
            if k in ("name", "id"):
                out[k] = v
            elif k == "config" and isinstance(v, dict) and isinstance(defaults.get(k), dict):
                out[k] = {ck: cv for ck, cv in v.items() if defaults[k].get(ck, object()) != cv}
            elif k not in defaults or defaults[k] != v:
                out[k] = v
        return out


def dump(config: Config, *, select_tags: list[str] | None = None, with_id: bool = False,
         skip_defaults: bool = False) -> dict[str, Any]:
    tags = list(select_tags or [])
    state = State(config)
    rows: dict[str, list[dict[str, Any]]] = {
        name: [r for r in config.entities.get(name) or () if has_tags(r, tags)]
        for name in config.entities
    }
    defaults = _Defaults()
    by_id = {name: {r["id"]: r for r in config.entities.get(name) or ()}
             for name in config.entities}
    dumped = {name: {r["id"]: r for r in rs} for name, rs in rows.items()}

    def parent_of(entity: str, row: dict[str, Any]) -> tuple[str, str] | None:
        if entity == "plugins":
            parent = _plugin_parent(row)
        elif entity in _PARENT_FIELD and isinstance(row.get(_PARENT_FIELD[entity]), dict):
            parent = ({"service": "services", "upstream": "upstreams",
                       "certificate": "certificates", "consumer": "consumers"}[
                _PARENT_FIELD[entity]], row[_PARENT_FIELD[entity]]["id"])
        else:
            return None
        # only nest under a parent that is itself in the dump
        return parent if parent and parent[1] in dumped.get(parent[0], {}) else None

    def ref_name(entity: str, ident: str) -> Any:
        target = by_id.get(entity, {}).get(ident)
        if target is None:
            return ident
        key = state.identity(entity, target)
        return key[1] if key[0] not in ("id", "cert") else ident

    def render(entity: str, row: dict[str, Any], nested: bool) -> dict[str, Any]:
        out = {k: copy.deepcopy(v) for k, v in row.items() if v is not None}
        key = state.identity(entity, row)
        if not with_id and key[0] != "id" and entity not in ("certificates",
                                                              "ca_certificates"):
            out.pop("id", None)
        for fk, ref_entity in foreign_fields(entity):
            ref = out.get(fk)
            if not isinstance(ref, dict):
                continue
            if nested and (entity == "plugins" or fk == _PARENT_FIELD.get(entity)):
                out.pop(fk)
            else:
                out[fk] = ref_name(ref_entity, ref["id"])
        if skip_defaults:
            out = defaults.strip(entity, out)
        for child in _CHILDREN.get(entity, ()):
            kids = [render(child, r, True) for r in sorted(
                rows.get(child, ()), key=lambda r: _sort_key(child, r))
                if parent_of(child, r) == (entity, row["id"])]
            if kids:
                out[child] = kids
        return out

    doc: dict[str, Any] = {"_format_version": "3.0"}
    if tags:
        doc["_info"] = {"select_tags": tags}
    for entity in TOP_LEVEL:
        top = [render(entity, r, False) for r in sorted(rows.get(entity, ()),
                                                        key=lambda r, e=entity: _sort_key(e, r))
               if parent_of(entity, r) is None]
        if top:
            doc[entity] = top
    # children whose parent is out of the select-tag scope stay top-level
    for entity in ("targets", "snis", "keyauth_credentials", "jwt_secrets"):
        orphans = [render(entity, r, False) for r in rows.get(entity, ())
                   if parent_of(entity, r) is None]
        if orphans:
            doc[entity] = orphans
    return doc
