"""decK's ``file patch`` and ``file add-tags / remove-tags / list-tags`` (offline edits).

A patch: ``selectors`` (JSONPath, default ``$``), ``values`` and ``remove``. On a selected
object, ``values`` sets fields (a ``null`` value removes the field, decK's ``key:``) and
``remove`` deletes fields; on a selected array, ``values`` (a list) is appended and
``remove`` drops equal elements. Patch file::

    _format_version: "1.0"
    patches:
      - selectors: ["$..plugins[?(@.name=='rate-limiting')].config"]
        values: {minute: 10}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from tollway.reconcile.jsonpath import JSONPathError, select

__all__ = ["ENTITY_KEYS", "JSONPathError", "PatchError", "add_tags", "apply_patch",
           "apply_patch_file", "list_tags", "parse_values", "remove_tags"]


class PatchError(ValueError):
    pass


def parse_values(items: Iterable[str]) -> tuple[dict[str, Any], list[Any]]:
    """decK's ``--value`` flags: ``key:json`` sets a field (``key:`` removes it); a bare
    JSON value is appended to selected arrays."""
    fields: dict[str, Any] = {}
    appends: list[Any] = []
    for item in items:
        key, sep, raw = item.partition(":")
        if sep and key and not key.lstrip().startswith(('"', "[", "{")):
            raw = raw.strip()
            if raw == "":
                fields[key.strip()] = None
                continue
            try:
                fields[key.strip()] = json.loads(raw)
            except ValueError:
                fields[key.strip()] = raw
        else:
            try:
                appends.append(json.loads(item))
            except ValueError:
                raise PatchError(f"--value {item!r}: expected 'key:value' or a JSON value "
                                 f"to append") from None
    return fields, appends


def apply_patch(doc: Any, selectors: list[str], values: Any = None,
                remove: list[Any] | None = None) -> int:
    """Apply one patch in place; returns how many nodes were selected."""
    count = 0
    for selector in selectors or ["$"]:
        for node in select(doc, selector):
            count += 1
            if isinstance(node, dict):
                if values is not None and not isinstance(values, dict):
                    raise PatchError(f"{selector}: selects an object; values must be an "
                                     f"object")
                for k, v in (values or {}).items():
                    if v is None:
                        node.pop(k, None)
                    else:
                        node[k] = v
                for k in remove or ():
                    node.pop(k, None)
            elif isinstance(node, list):
                if isinstance(values, dict):
                    if values:
                        raise PatchError(f"{selector}: selects an array; values must be a "
                                         f"list of items to append")
                    values = []
                node.extend(values or [])
                for v in remove or ():
                    while v in node:
                        node.remove(v)
            else:
                raise PatchError(f"{selector}: selects a {type(node).__name__}, not an "
                                 f"object or array")
    return count


def apply_patch_file(doc: Any, patch_doc: Any, source: str = "patch") -> int:
    if not isinstance(patch_doc, dict) or not isinstance(patch_doc.get("patches"), list):
        raise PatchError(f"{source}: expected an object with a 'patches' list")
    total = 0
    for i, patch in enumerate(patch_doc["patches"]):
        if not isinstance(patch, dict):
            raise PatchError(f"{source}: patches[{i}]: expected an object")
        unknown = set(patch) - {"selectors", "values", "remove"}
        if unknown:
            raise PatchError(f"{source}: patches[{i}]: unknown field(s) "
                             f"{', '.join(sorted(unknown))}")
        selectors = patch.get("selectors") or ["$"]
        if not isinstance(selectors, list) or not all(isinstance(s, str) for s in selectors):
            raise PatchError(f"{source}: patches[{i}].selectors: expected a list of strings")
        try:
            total += apply_patch(doc, selectors, patch.get("values"), patch.get("remove"))
        except (PatchError, JSONPathError) as exc:
            raise PatchError(f"{source}: patches[{i}]: {exc}") from None
    return total


# keys under which Kong entities appear, at any nesting level
ENTITY_KEYS = frozenset({"services", "routes", "consumers", "plugins", "upstreams", "targets",
                         "certificates", "snis", "ca_certificates", "keyauth_credentials",
                         "jwt_secrets", "basicauth_credentials", "acls",
                         "hmacauth_credentials", "oauth2_credentials", "vaults"})


def _entities(doc: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ENTITY_KEYS and isinstance(value, list):
                    for item in value:
                        if isinstance(item, dict):
                            found.append(item)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(doc)
    return found


def _targets(doc: Any, selectors: list[str] | None) -> list[dict[str, Any]]:
    everything = _entities(doc)
    if not selectors:
        return everything
    ids = {id(e) for e in everything}
    picked: list[dict[str, Any]] = []
    for selector in selectors:
        for node in select(doc, selector):
            if isinstance(node, dict) and id(node) in ids and node not in picked:
                picked.append(node)
    return picked


def add_tags(doc: Any, tags: list[str], selectors: list[str] | None = None) -> int:
    n = 0
    for entity in _targets(doc, selectors):
        own = list(entity.get("tags") or [])
        entity["tags"] = own + [t for t in tags if t not in own]
        n += 1
    return n


def remove_tags(doc: Any, tags: list[str], selectors: list[str] | None = None,
                keep_empty: bool = False) -> int:
    """Remove ``tags`` (all tags when empty) from the entities; an emptied list is dropped
    unless ``keep_empty``."""
    n = 0
    for entity in _targets(doc, selectors):
        if "tags" not in entity:
            continue
        kept = [t for t in entity["tags"] or [] if tags and t not in tags]
        if kept or keep_empty:
            entity["tags"] = kept
        else:
            del entity["tags"]
        n += 1
    return n


def list_tags(doc: Any, selectors: list[str] | None = None) -> list[str]:
    seen: set[str] = set()
    for entity in _targets(doc, selectors):
        seen.update(t for t in entity.get("tags") or [] if isinstance(t, str))
    return sorted(seen)
