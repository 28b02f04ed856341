"""Entity timestamps (`created_at` / `updated_at`) carried from one revision to the next.

They are not part of the normalised config (its hash is what the workers, other nodes and
`config diff` compare), so every stored revision keeps them beside its entities: entity id →
(created_at, updated_at), epoch seconds. A new revision's table is derived from the one it
replaces by comparing rows by id — the same rule whatever made the revision (an Admin API
write, `POST /config`, `tollway start --config`, a restore, another node):

* an id the previous revision did not have is created now;
* an id whose row changed is updated now, and so is one the Admin API wrote (`touched`), as
  Kong's DAO stamps every update even when no value changed;
* any other id keeps its times.

Revisions stored before timestamps were kept have none: their entities are taken as created
when that revision was (the earliest time known to be true, and the same on every node).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from typing import Any

Times = dict[str, tuple[int, int]]
Entities = dict[str, list[dict[str, Any]]]


def _rows(entities: Entities) -> Iterator[tuple[str, dict[str, Any]]]:
    for rows in entities.values():
        for row in rows:
            ident = row.get("id")
            if ident is not None:
                yield str(ident).lower(), row


def carry(old: Entities | None, old_times: Times | None, new: Entities, now: int,
          touched: Collection[str] = ()) -> Times:
    """The times of `new`, the revision after `old` (whose times are `old_times`, one per
    entity: see `stored`)."""
    before = dict(_rows(old)) if old else {}
    known = old_times or {}
    lowered = {t.lower() for t in touched}
    out: Times = {}
    for ident, row in _rows(new):
        prev = before.get(ident)
        if prev is None:
            out[ident] = (now, now)
            continue
        created, updated = known.get(ident, (now, now))
        if ident in lowered or prev != row:
            updated = now
        out[ident] = (created, updated)
    return out


def dumps(times: Times) -> str:
    return json.dumps({k: list(v) for k, v in times.items()}, sort_keys=True,
                      separators=(",", ":"))


def loads(text: str | None) -> Times | None:
    """The stored form back; None for a revision stored without timestamps."""
    if not text:
        return None
    return decode(json.loads(text))


def decode(data: dict[str, Any]) -> Times:
    """Times from their JSON form (`dumps`, or an object inside another document)."""
    return {str(k): (int(v[0]), int(v[1])) for k, v in data.items()}


def stored(entities: Entities, times: Times | None, created_at: float) -> Times:
    """A stored revision's times: its own, or for one stored before they were kept, the
    revision's own time for every entity (as `carry` assumes)."""
    if times is not None:
        return times
    when = int(created_at)
    return {ident: (when, when) for ident, _ in _rows(entities)}
