"""Entity timestamps from one revision to the next (tollway.controlplane.store.times)."""

from __future__ import annotations

from tollway.controlplane.store import times

SVC = "5A1FBB4A-0000-4000-8000-000000000001"  # ids compare case-insensitively
ROUTE = "5a1fbb4a-0000-4000-8000-000000000002"


def entities(read_timeout: int = 60000, route: bool = True) -> times.Entities:
    out: times.Entities = {"services": [{"id": SVC, "name": "s", "read_timeout": read_timeout}]}
    if route:
        out["routes"] = [{"id": ROUTE, "name": "r", "service": {"id": SVC}}]
    return out


def test_new_changed_touched_and_unchanged_entities() -> None:
    first = times.carry(None, None, entities(), now=100)
    assert first == {SVC.lower(): (100, 100), ROUTE: (100, 100)}
    # the service changed, the route did not
    second = times.carry(entities(), first, entities(read_timeout=5), now=200)
    assert second == {SVC.lower(): (100, 200), ROUTE: (100, 100)}
    # nothing changed, but the Admin API wrote the route (a PATCH with the same values)
    third = times.carry(entities(5), second, entities(5), now=300, touched={ROUTE.upper()})
    assert third == {SVC.lower(): (100, 200), ROUTE: (100, 300)}
    # gone, then back: created again
    gone = times.carry(entities(5), third, entities(5, route=False), now=400)
    assert gone == {SVC.lower(): (100, 200)}
    back = times.carry(entities(5, route=False), gone, entities(5), now=500)
    assert back[ROUTE] == (500, 500) and back[SVC.lower()] == (100, 200)


def test_a_revision_stored_before_times_were_kept() -> None:
    # its entities count as created when that revision was: the same on every node
    assert times.stored(entities(), None, 42.9) == {SVC.lower(): (42, 42), ROUTE: (42, 42)}
    carried = times.carry(entities(), times.stored(entities(), None, 42.9),
                          entities(read_timeout=1), now=100)
    assert carried == {SVC.lower(): (42, 100), ROUTE: (42, 42)}


def test_stored_form_round_trips() -> None:
    t = {SVC.lower(): (1, 2), ROUTE: (3, 3)}
    assert times.loads(times.dumps(t)) == t
    assert times.loads(None) is None and times.loads("") is None
