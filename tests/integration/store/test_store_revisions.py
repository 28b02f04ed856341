"""The revision store on SQLite and PostgreSQL: history, If-Match, concurrent writers,
atomicity."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from tollway.config.declarative import validate
from tollway.config.model import EMPTY_HASH, Config
from tollway.controlplane.store import PreconditionFailed, Store, StoreError, etag


def cfg(host: str = "a.internal", *routes: str) -> Config:
    return validate({"_format_version": "3.0", "services": [{
        "name": "svc", "url": f"http://{host}:8080",
        "routes": [{"name": f"r{i}", "paths": [p]} for i, p in enumerate(routes)]}]})


def test_every_change_is_a_numbered_immutable_revision(store: Store) -> None:
    assert store.latest() is None
    assert store.head() == (None, EMPTY_HASH)
    one, two = cfg("a.internal", "/a"), cfg("b.internal", "/a", "/b")
    rev1, created1 = store.append(one, "alice", "first")
    rev2, created2 = store.append(two, "bob", "second")
    assert (created1, created2) == (True, True)
    assert (rev1.number, rev2.number) == (1, 2)
    assert store.head() == (2, two.hash)

    got = store.get(1)
    assert got is not None
    assert (got.hash, got.author, got.message) == (one.hash, "alice", "first")
    assert got.config == one  # normalised entities, defaults filled, round-trip exact
    assert got.config.entities["services"][0]["connect_timeout"] == 60000
    assert got.created_at <= rev2.created_at
    latest = store.latest()
    assert latest is not None and latest.number == 2 and latest.config == two
    assert store.get(3) is None
    assert store.count() == 2


def test_an_identical_config_is_not_stored_twice(store: Store) -> None:
    store.append(cfg("a.internal", "/a"))
    rev, created = store.append(cfg("a.internal", "/a"), "someone", "again")
    assert not created and rev.number == 1
    assert store.count() == 1
    # equal to an older revision but not to the latest: a new revision (a rollback)
    store.append(cfg("b.internal", "/a"))
    rev, created = store.append(cfg("a.internal", "/a"))
    assert created and rev.number == 3


def test_pages_are_newest_first(store: Store) -> None:
    for i in range(5):
        store.append(cfg(f"h{i}.internal", "/a"), message=f"m{i}")
    first = store.page(2)
    assert [r.number for r in first] == [5, 4]
    assert first[0].entities is None  # listings leave the documents out
    assert [r.number for r in store.page(2, before=4)] == [3, 2]
    assert [r.number for r in store.page(10, before=2)] == [1]
    assert [r.meta()["message"] for r in store.page(10)] == ["m4", "m3", "m2", "m1", "m0"]


def test_if_match_accepts_the_current_hash_and_refuses_a_stale_one(store: Store) -> None:
    one = cfg("a.internal", "/a")
    # before any revision the current hash is the empty config's
    with pytest.raises(PreconditionFailed):
        store.append(one, if_match=etag("f" * 32))
    rev1, _ = store.append(one, if_match=etag(EMPTY_HASH))
    assert rev1.number == 1
    two = cfg("b.internal", "/a")
    rev2, created = store.append(two, if_match=f'"nope", {etag(one.hash)}')  # a list
    assert created and rev2.number == 2
    with pytest.raises(PreconditionFailed) as info:
        store.append(cfg("c.internal", "/a"), if_match=etag(one.hash))  # stale
    assert info.value.current_hash == two.hash
    assert info.value.current_revision == 2
    assert str(two.hash) in str(info.value)
    assert store.count() == 2  # nothing written
    with pytest.raises(PreconditionFailed):
        store.append(cfg("c.internal", "/a"), if_match=f"W/{etag(two.hash)}")  # weak
    rev3, _ = store.append(cfg("c.internal", "/a"), if_match="*")
    rev4, _ = store.append(cfg("d.internal", "/a"), if_match=cfg("c.internal", "/a").hash)
    assert (rev3.number, rev4.number) == (3, 4)


def test_two_writers_with_the_same_if_match_one_wins(store: Store) -> None:
    base, _ = store.append(cfg("base.internal", "/a"))
    n = 8
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def write(i: int) -> None:
        barrier.wait()
        try:
            results[i] = store.append(cfg(f"w{i}.internal", "/a"), f"writer{i}",
                                      if_match=etag(base.hash))[0].number
        except PreconditionFailed as exc:
            results[i] = exc

    threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [r for r in results if isinstance(r, int)]
    losers = [r for r in results if isinstance(r, PreconditionFailed)]
    assert winners == [2], results
    assert len(losers) == n - 1
    assert store.count() == 2
    assert {exc.current_revision for exc in losers} == {2}


def test_unconditional_concurrent_writers_get_distinct_revisions(store: Store) -> None:
    n = 6
    barrier = threading.Barrier(n)
    numbers: list[int] = []
    lock = threading.Lock()

    def write(i: int) -> None:
        barrier.wait()
        number = store.append(cfg(f"u{i}.internal", "/a"))[0].number
        with lock:
            numbers.append(number)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(numbers) == list(range(1, n + 1))
    assert store.head()[0] == n


def test_a_write_failing_midway_leaves_no_revision(store: Store) -> None:
    one = cfg("a.internal", "/a")
    store.append(one)

    def fail_on_head_update(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # the revision row is already inserted when the head moves: this fails the write
        # between its two statements
        if statement.lstrip().upper().startswith("UPDATE CONFIG_HEAD"):
            raise RuntimeError("disk on fire")

    event.listen(store.engine, "before_cursor_execute", fail_on_head_update)
    try:
        with pytest.raises(RuntimeError, match="disk on fire"):
            store.append(cfg("b.internal", "/b"), "mallory", "half a write")
    finally:
        event.remove(store.engine, "before_cursor_execute", fail_on_head_update)
    assert store.count() == 1
    assert store.head() == (1, one.hash)
    latest = store.latest()
    assert latest is not None and latest.number == 1
    rev, created = store.append(cfg("b.internal", "/b"))  # the store still works
    assert created and rev.number == 2


def test_a_database_error_is_a_store_error_naming_the_database(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE config_head"))
    with pytest.raises(StoreError) as info:
        store.append(cfg("a.internal", "/a"))
    assert store.description in str(info.value)
    assert store.count() == 0


def test_entity_times_are_stored_with_each_revision(store: Store) -> None:
    rev1, _ = store.append(cfg("a.internal", "/a"))
    assert rev1.times is not None and len(rev1.times) == 2  # the service and its route
    svc = next(i for i, row in _ids(rev1) if "host" in row)
    route = next(i for i, row in _ids(rev1) if "paths" in row)
    created = rev1.times[svc][0]
    # the service changes; the route's row is the same: it keeps its times
    rev2, _ = store.append(cfg("b.internal", "/a"))
    assert rev2.times is not None
    assert rev2.times[route] == rev1.times[route]
    assert rev2.times[svc][0] == created and rev2.times[svc][1] >= created
    # read back as stored; an identical config returns the head's times
    got = store.latest()
    assert got is not None and got.times == rev2.times
    same, created_again = store.append(cfg("b.internal", "/a"), touched=())
    assert not created_again and same.times == rev2.times


def test_a_revision_stored_before_times_counts_from_its_own_time(store: Store) -> None:
    rev1, _ = store.append(cfg("a.internal", "/a"))
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE config_revisions SET times = NULL"))
    old = store.get(rev1.number)
    # read back, its entities count as created when that revision was stored
    assert old is not None and old.times is not None
    assert set(old.times.values()) == {(int(rev1.created_at), int(rev1.created_at))}
    # the next revision takes its entities as created when that revision was stored
    rev2, _ = store.append(cfg("b.internal", "/a"))
    assert rev2.times is not None
    assert {c for c, _ in rev2.times.values()} == {int(rev1.created_at)}


def _ids(rev: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(str(r["id"]).lower(), r) for rows in rev.entities.values() for r in rows]
