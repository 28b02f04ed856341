"""Current state + desired state → events, and the whole config a sync posts.

decK diffs per entity and applies one Admin API call per event; tollway computes the same
events but applies their result as one ``POST /config`` (one atomic revision, never half
applied). ``plan`` therefore returns both the events (for the output) and the complete
target document.

Select tags (decK §6.3): only current entities carrying *all* the tags are in scope; every
desired entity gets the tags added; entities out of scope are carried over untouched, so two
teams owning two tags never touch each other's entities.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from tollway.config.declarative import validate
from tollway.config.entities import ENTITY_NAMES
from tollway.config.model import Config
from tollway.reconcile.state import LEVELS, Entry, State, foreign_fields, has_tags

Op = Literal["create", "update", "delete"]


class PlanError(ValueError):
    """The desired state cannot be applied as asked (e.g. it collides with an entity that
    another select tag owns)."""


@dataclass
class Event:
    op: Op
    entry: Entry  # the desired entry for create/update, the current one for delete
    old: Entry | None = None

    @property
    def kind(self) -> str:
        return self.entry.kind

    @property
    def name(self) -> str:
        return self.entry.name


@dataclass
class Plan:
    events: list[Event]
    target: dict[str, Any]  # the whole declarative document to POST (flat, with ids)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.events)

    def count(self, op: Op) -> int:
        return sum(1 for e in self.events if e.op == op)


def with_select_tags(config: Config, tags: list[str]) -> Config:
    """The desired config with the select tags added to every entity (merged, no
    duplicates), as decK does before diffing."""
    if not tags:
        return config
    entities = copy.deepcopy(config.entities)
    for rows in entities.values():
        for row in rows:
            own = list(row.get("tags") or [])
            row["tags"] = own + [t for t in tags if t not in own]
    return Config.from_entities(entities)


def plan(current: Config, desired: Config, *, select_tags: list[str] | None = None,
         delete: bool = True) -> Plan:
    """Events turning ``current`` into ``desired`` (within the select-tag scope), and the
    whole config that results. ``delete=False`` is ``apply``: nothing is deleted."""
    tags = list(select_tags or [])
    desired = with_select_tags(desired, tags)
    cur, des = State(current), State(desired)

    def in_scope(entry: Entry) -> bool:
        return has_tags(entry.raw, tags)

    events: list[Event] = []
    id_map: dict[tuple[str, str], str] = {}  # (entity, desired id) -> id in the target
    for entry in des:
        old = cur.get(entry.entity, entry.key)
        if old is not None and not in_scope(old):
            raise PlanError(
                f"{entry.kind} {entry.name} already exists and is not managed by select "
                f"tag(s) {', '.join(tags)}: it belongs to another owner; rename it or tag it")
        if old is None:
            events.append(Event("create", entry))
            id_map[(entry.entity, entry.raw["id"])] = entry.raw["id"]
            continue
        id_map[(entry.entity, entry.raw["id"])] = old.raw["id"]
        if old.view != entry.view:
            events.append(Event("update", entry, old))
    kept: list[Entry] = []
    for entry in cur:
        wanted = des.get(entry.entity, entry.key) is not None
        if wanted:
            continue
        if in_scope(entry) and delete:
            events.append(Event("delete", entry))
        else:
            kept.append(entry)
    events.sort(key=_event_order)
    target = _target_document(kept, des, id_map)
    return Plan(events, target)


def _event_order(event: Event) -> tuple[int, int, str]:
    level = LEVELS[event.entry.entity]
    # deletes bottom-up after creates/updates top-down (gdr pkg/diff/order.go)
    if event.op == "delete":
        return (1, -level, event.name)
    return (0, level, event.name)


def _target_document(kept: list[Entry], desired: State,
                     id_map: dict[tuple[str, str], str]) -> dict[str, Any]:
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in ENTITY_NAMES}
    for entry in kept:
        rows[entry.entity].append(copy.deepcopy(entry.raw))
    for entry in desired:
        row = copy.deepcopy(entry.raw)
        row["id"] = id_map.get((entry.entity, row["id"]), row["id"])
        for fk, ref_entity in foreign_fields(entry.entity):
            ref = row.get(fk)
            if isinstance(ref, dict) and ref.get("id") is not None:
                row[fk] = {"id": id_map.get((ref_entity, ref["id"]), ref["id"])}
        rows[entry.entity].append(row)
    doc: dict[str, Any] = {"_format_version": "3.0"}
    for name in ENTITY_NAMES:
        if rows[name]:
            doc[name] = [{k: v for k, v in r.items() if v is not None} for r in rows[name]]
    return doc


def target_config(p: Plan) -> Config:
    """The plan's target validated as the node will validate it (raises ConfigError)."""
    return validate(copy.deepcopy(p.target))
