"""Validation of a whole declarative document (Kong's ``declarative_config.lua``).

Pipeline: metadata keys → (1.1/2.1 route-path migration) → every entity validated where it
was written (nested or not) → ids (explicit, endpoint-key UUIDv5, random) → parent keys
filled → checks needing the foreign keys (plugins' ``no_consumer``) → references by name
or id resolved → cache-key ids (plugins, targets) → uniqueness. Every problem found along
the way is collected; ``ConfigError`` lists them all.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tollway.config.entities import ENTITIES, ENTITY_NAMES, EntitySpec
from tollway.config.errors import ConfigError, ConfigErrorItem
from tollway.config.model import Config
from tollway.config.schema import ENTITY, to_kong_fields
from tollway.config.typedefs import normalize_path

__all__ = ["FORMAT_VERSIONS", "Locator", "entity_namespace", "validate"]

FORMAT_VERSIONS = ("1.1", "2.1", "3.0")
META_KEYS = ("_comment", "_ignore")
ROOT_NAMESPACE = uuid.UUID("fd02801f-0957-4a15-a55a-c8d9606f30b5")

Path = tuple[str | int, ...]


class Locator:
    """Source lines of a parsed document: ``lines[path] = 1-based line``.

    A path without its own entry (e.g. a missing required field) is reported at the line
    of its nearest ancestor that has one.
    """

    def __init__(self, lines: Mapping[Path, int] | None = None, filename: str | None = None):
        self.lines: dict[Path, int] = dict(lines or {})
        self.filename = filename

    def line(self, path: Path) -> int | None:
        for end in range(len(path), -1, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return None

    def origin(self, path: Path) -> tuple[str | None, Path]:
        """The file a path of the (possibly merged) document came from, and its path there."""
        return self.filename, path


class MergedLocator(Locator):
    """Lines of a document merged from several files (`tollway start -c a.yaml -c b.yaml`):
    an error in the third service of the merged document is reported in the file and at the
    index where that service was written."""

    def __init__(self, parts: list[tuple[Locator, dict[str, tuple[int, int]]]]) -> None:
        super().__init__({}, parts[0][0].filename if parts else None)
        self.parts = parts  # (locator, {top-level key: (start index, count)})

    def origin(self, path: Path) -> tuple[str | None, Path]:
        if len(path) >= 2 and isinstance(path[0], str) and isinstance(path[1], int):
            for locator, spans in self.parts:
                span = spans.get(path[0])
                if span is not None and span[0] <= path[1] < span[0] + span[1]:
                    return locator.filename, (path[0], path[1] - span[0], *path[2:])
        return self.filename, path

    def line(self, path: Path) -> int | None:
        filename, local = self.origin(path)
        for locator, _ in self.parts:
            if locator.filename == filename:
                return locator.line(local)
        return None


def render_path(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def entity_namespace(entity_name: str) -> uuid.UUID:
    return uuid.uuid5(ROOT_NAMESPACE, entity_name)


_PLAIN_PATH = re.compile(r"^[a-zA-Z0-9.\-_~/%]*$")


def _migrate_path(path: Any) -> Any:
    # 1.1/2.1 files had no `~` marker: anything that is not a plain path was a regex.
    if not isinstance(path, str):
        return path
    return normalize_path(path) if _PLAIN_PATH.match(path) else "~" + path


@dataclass
class _Item:
    spec: EntitySpec
    path: Path
    raw: dict[str, Any]
    out: dict[str, Any]
    errors: dict[str, Any]
    parent: _Item | None
    parent_field: str | None
    generated: set[str] = field(default_factory=set)
    unique_errors: list[str] = field(default_factory=list)


class _Validation:
    def __init__(self, locator: Locator | None) -> None:
        self.locator = locator
        self.items: list[_Item] = []
        self.top_errors: dict[str, Any] = {}
        # errors on positions that never became entities ("expected a record" ...)
        self.position_errors: list[tuple[Path, str]] = []
        self.migrate = False

    # -- walking ------------------------------------------------------------------------
    def run(self, document: Any) -> Config:
        if not isinstance(document, dict):
            raise ConfigError(
                [ConfigErrorItem("<root>", "expected an object", self._line(()), self._file())],
                {"error": "expected an object"},
            )
        self._check_meta(document)
        for key, value in document.items():
            if key in META_KEYS or key in ("_format_version", "_transform"):
                continue
            spec = ENTITIES.get(key) if isinstance(key, str) else None
            if spec is None:
                self.top_errors[str(key)] = "unknown field"
                continue
            self._walk_list(spec, value, (key,), None)
        self._assign_ids()
        self._fill_parents()
        self._check_links()
        self._resolve_references()
        self._assign_cache_key_ids()
        self._check_uniqueness()
        self._raise_if_invalid()
        entities = {
            name: [item.out for item in self.items if item.spec.name == name]
            for name in ENTITY_NAMES
        }
        return Config.from_entities(entities)

    def _check_meta(self, document: dict[str, Any]) -> None:
        version = document.get("_format_version")
        if version is None:
            self.top_errors["_format_version"] = "required field missing"
        elif not isinstance(version, str):
            self.top_errors["_format_version"] = "expected a string"
        elif version not in FORMAT_VERSIONS:
            self.top_errors["_format_version"] = "expected one of: " + ", ".join(FORMAT_VERSIONS)
        else:
            self.migrate = version in ("1.1", "2.1")
        if "_transform" in document and not isinstance(document["_transform"], bool):
            self.top_errors["_transform"] = "expected a boolean"
        if "_comment" in document and not isinstance(document["_comment"], str):
            self.top_errors["_comment"] = "expected a string"
        if "_ignore" in document and not isinstance(document["_ignore"], list):
            self.top_errors["_ignore"] = "expected an array"

    def _walk_list(self, spec: EntitySpec, value: Any, path: Path, parent: _Item | None) -> None:
        if not isinstance(value, list):
            self.position_errors.append((path, "expected an array"))
            return
        for i, raw in enumerate(value):
            self._walk_entity(spec, raw, (*path, i), parent)

    def _walk_entity(self, spec: EntitySpec, raw: Any, path: Path, parent: _Item | None) -> None:
        if not isinstance(raw, dict):
            self.position_errors.append((path, "expected a record"))
            return
        data = {k: v for k, v in raw.items() if k not in META_KEYS}
        children = {name: data.pop(name) for name in spec.children if name in data}
        generated: set[str] = set()
        for name in spec.auto:
            if data.get(name) is None:
                # Kong's utils.random_string(): 32 hex characters from a v4 UUID
                data[name] = uuid.uuid4().hex
                generated.add(name)
        if self.migrate and spec.name == "routes" and isinstance(data.get("paths"), list):
            data["paths"] = [_migrate_path(p) for p in data["paths"]]
        out, errors = spec.validate(data, nested=parent is not None)
        parent_field = None
        if parent is not None:
            parent_field = next(
                f for f, ref in spec.foreign_fields.items() if ref == parent.spec.name
            )
        item = _Item(spec, path, data, out, errors, parent, parent_field, generated)
        self.items.append(item)
        for name, value in children.items():
            self._walk_list(ENTITIES[name], value, (*path, name), item)

    # -- ids and references -------------------------------------------------------------
    def _assign_ids(self) -> None:
        for item in self.items:
            spec = item.spec
            if item.out.get("id") is not None or "id" in item.errors or spec.cache_key:
                continue
            key = spec.endpoint_key
            value = item.out.get(key) if key else None
            if key and value is not None and key not in item.generated and key not in item.errors:
                item.out["id"] = str(uuid.uuid5(entity_namespace(spec.name), str(value)))
            else:
                item.out["id"] = str(uuid.uuid4())

    def _fill_parents(self) -> None:
        for item in self.items:
            if item.parent is not None and item.parent_field is not None:
                parent_id = item.parent.out.get("id")
                item.out[item.parent_field] = {"id": parent_id} if parent_id else None

    def _check_links(self) -> None:
        for item in self.items:
            check = item.spec.link_check
            if check is None:
                continue
            for fname, message in check(item.out).items():
                item.errors.setdefault(fname, message)

    def _resolve_references(self) -> None:
        by_id: dict[str, dict[str, str]] = {name: {} for name in ENTITIES}
        by_key: dict[str, dict[str, str]] = {name: {} for name in ENTITIES}
        for item in self.items:
            ident = item.out.get("id")
            if not isinstance(ident, str):
                continue
            by_id[item.spec.name].setdefault(ident.lower(), ident)
            key = item.spec.endpoint_key
            if key and isinstance(item.out.get(key), str):
                by_key[item.spec.name].setdefault(item.out[key], ident)
        for item in self.items:
            if item.parent is not None:
                continue  # nested: every foreign key but the parent's is null
            for fname, ref in item.spec.foreign_fields.items():
                value = item.out.get(fname)
                if value is None or fname in item.errors:
                    continue
                wanted = value["id"] if isinstance(value, dict) else value
                found = by_id[ref].get(str(wanted).lower()) or by_key[ref].get(wanted)
                if found is None:
                    item.errors[fname] = (
                        f"invalid reference '{fname}: {wanted}' (no such entry in '{ref}')"
                    )
                else:
                    item.out[fname] = {"id": found}

    def _cache_key_parts(self, item: _Item) -> list[str] | None:
        parts: list[str] = []
        for key in item.spec.cache_key or ():
            if key in item.errors:
                return None
            value = item.out.get(key)
            if isinstance(value, dict):
                value = value.get("id")
            parts.append("" if value is None else str(value))
        return parts

    def _assign_cache_key_ids(self) -> None:
        for item in self.items:
            spec = item.spec
            if not spec.cache_key or item.out.get("id") is not None or "id" in item.errors:
                continue
            parts = self._cache_key_parts(item)
            if parts is None:
                item.out["id"] = str(uuid.uuid4())
                continue
            name = f"{spec.name}:*:" + ":".join(parts)
            item.out["id"] = str(uuid.uuid5(entity_namespace(spec.name), name))

    def _check_uniqueness(self) -> None:
        seen: dict[tuple[str, str, str], bool] = {}

        def claim(item: _Item, what: str, value: str, label: str) -> bool:
            slot = (item.spec.name, what, value)
            if slot in seen:
                item.unique_errors.append(
                    f"uniqueness violation: '{item.spec.name}' entity with {label} set to "
                    f"'{value}' already declared"
                )
                return False
            seen[slot] = True
            return True

        for item in self.items:
            spec = item.spec
            key = spec.endpoint_key
            if key and spec.endpoint_key_unique and key not in item.errors:
                value = item.out.get(key)
                if value is not None and not claim(item, key, str(value), key):
                    continue
            ident = item.out.get("id")
            if ident is not None and not claim(item, "@pk", str(ident).lower(), "primary key"):
                continue
            if spec.cache_key:
                parts = self._cache_key_parts(item)
                if parts is not None and not claim(
                    item, "@cache_key", ", ".join(parts), ", ".join(spec.cache_key)
                ):
                    continue
            for fname in spec.unique:
                value = item.out.get(fname)
                if value is not None and fname not in item.errors:
                    claim(item, fname, str(value), fname)

    # -- error reporting ----------------------------------------------------------------
    def _file(self) -> str | None:
        return self.locator.filename if self.locator else None

    def _line(self, path: Path) -> int | None:
        return self.locator.line(path) if self.locator else None

    def _item_errors(self, errors: Mapping[Any, Any], path: Path) -> Iterator[tuple[Path, str]]:
        for key, value in errors.items():
            if key == ENTITY:
                for message in value:
                    yield path, message
            elif isinstance(value, dict):
                yield from self._item_errors(value, (*path, key))
            else:
                yield (*path, key), str(value)

    def _raise_if_invalid(self) -> None:
        found: list[tuple[Path, str]] = []
        tree: dict[str, Any] = dict(self.top_errors)
        for key, message in self.top_errors.items():
            found.append(((key,), message))
        for path, message in self.position_errors:
            found.append((path, message))
            _tree_set(tree, path, message)
        flattened: list[dict[str, Any]] = []
        for item in self.items:
            if not item.errors and not item.unique_errors:
                continue
            found.extend(self._item_errors(item.errors, item.path))
            found.extend((item.path, m) for m in item.unique_errors)
            node = _tree_node(tree, item.path)
            node.update(item.errors)
            if item.unique_errors:
                node.setdefault(ENTITY, []).extend(item.unique_errors)
            flattened.append(_flattened_entry(item))
        if not found:
            return
        items = []
        for path, message in found:
            filename, local = self.locator.origin(path) if self.locator else (None, path)
            items.append(ConfigErrorItem(render_path(local), message, self._line(path), filename))
        if self.locator is not None:
            order = {id(it): n for n, it in enumerate(items)}
            items.sort(key=lambda it: (it.line or 0, order[id(it)]))
        raise ConfigError(items, to_kong_fields(_collapse(tree)), flattened)


def _tree_node(tree: dict[Any, Any], path: Path) -> dict[Any, Any]:
    node = tree
    for part in path:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    return node


def _tree_set(tree: dict[Any, Any], path: Path, message: str) -> None:
    _tree_node(tree, path[:-1])[path[-1]] = message


def _collapse(tree: Any) -> Any:
    """An entity whose only problem is entity-level (uniqueness) is a bare string in Kong's
    table, e.g. ``{"services": [null, "uniqueness violation: ..."]}``."""
    if not isinstance(tree, dict):
        return tree
    if (
        set(tree) == {ENTITY}
        and len(tree[ENTITY]) == 1
        and tree[ENTITY][0].startswith("uniqueness violation")
    ):
        return tree[ENTITY][0]
    return {k: (v if k == ENTITY else _collapse(v)) for k, v in tree.items()}


def _flat_field_errors(errors: Mapping[Any, Any], prefix: str) -> Iterator[dict[str, Any]]:
    for key, value in errors.items():
        if key == ENTITY:
            if prefix:
                for message in value:
                    yield {"type": "field", "field": prefix, "message": message}
            continue
        name = (
            f"{prefix}[{key}]"
            if isinstance(key, int)
            else (f"{prefix}.{key}" if prefix else str(key))
        )
        if isinstance(value, dict):
            yield from _flat_field_errors(value, name)
        else:
            yield {"type": "field", "field": name, "message": str(value)}


def _flattened_entry(item: _Item) -> dict[str, Any]:
    """One entry of Kong's ``flattened_errors`` (``/config?flatten_errors=1``)."""
    errors = list(_flat_field_errors(item.errors, ""))
    errors.extend({"type": "entity", "message": m} for m in item.errors.get(ENTITY, []))
    errors.extend({"type": "entity", "message": m} for m in item.unique_errors)
    key = item.spec.endpoint_key
    name = item.raw.get(key) if key else None
    if name is None:
        name = item.raw.get("name")  # plugins: instance_name, else the plugin's name
    entity = dict(item.raw)
    if item.parent_field and item.parent is not None:
        entity[item.parent_field] = {"id": item.parent.out.get("id")}
    return {
        "entity_type": item.spec.singular,
        "entity_name": name if isinstance(name, str) else None,
        "entity_id": item.raw.get("id") if isinstance(item.raw.get("id"), str) else None,
        "entity_tags": item.raw.get("tags") if isinstance(item.raw.get("tags"), list) else None,
        "entity": entity,
        "errors": errors,
    }


def validate(document: Any, locator: Locator | Mapping[Path, int] | None = None) -> Config:
    """Validate a parsed declarative document; returns the normalised ``Config`` or raises
    ``ConfigError`` listing every problem (paths as written, lines when ``locator`` given)."""
    if locator is not None and not isinstance(locator, Locator):
        locator = Locator(locator)
    return _Validation(locator).run(document)
