"""``Config``: the validated, normalised declarative configuration (docs/architecture.md)."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from tollway.config.entities import ENTITY_NAMES

EMPTY_HASH = "0" * 32


def config_hash(entities: dict[str, list[dict[str, Any]]]) -> str:
    """md5 hex of the canonical JSON of ``entities`` (Kong's configuration_hash shape);
    32 zeros for an empty config, as Kong reports before any config is loaded."""
    if not any(entities.values()):
        return EMPTY_HASH
    canonical = json.dumps(entities, sort_keys=True, separators=(",", ":"))
    return hashlib.md5(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, eq=True)
class Config:
    """Immutable by convention: callers must not mutate ``entities`` (plain dicts so they
    stay JSON-serialisable and cheap to pickle to workers)."""

    entities: dict[str, list[dict[str, Any]]]
    hash: str
    _index: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __hash__(self) -> int:
        return hash(self.hash)

    @classmethod
    def from_entities(cls, entities: dict[str, list[dict[str, Any]]]) -> Config:
        full = {name: list(entities.get(name, [])) for name in ENTITY_NAMES}
        return cls(entities=full, hash=config_hash(full))

    @classmethod
    def empty(cls) -> Config:
        return cls.from_entities({})

    def by_id(self, entity_name: str) -> dict[str, dict[str, Any]]:
        """``{id: entity}`` for one entity type (built once, then cached)."""
        if entity_name not in self.entities:
            raise KeyError(entity_name)
        index = self._index.get(entity_name)
        if index is None:
            index = {e["id"]: e for e in self.entities[entity_name]}
            self._index[entity_name] = index
        return index

    def to_declarative(self) -> dict[str, Any]:
        """A flat ``_format_version: "3.0"`` document that validates back to an equal Config.

        Ids are kept; foreign keys stay in ``{"id": ...}`` form; unset (null) fields and
        empty entity lists are left out.
        """
        doc: dict[str, Any] = {"_format_version": "3.0"}
        for name in ENTITY_NAMES:
            rows = self.entities.get(name) or []
            if not rows:
                continue
            doc[name] = [
                {k: copy.deepcopy(v) for k, v in row.items() if v is not None} for row in rows
            ]
        return doc
