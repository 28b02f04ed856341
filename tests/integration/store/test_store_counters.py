"""Rate-limiting `cluster` counters in the config database, with expiry."""

from __future__ import annotations

import threading

from tollway.controlplane.store import Counters, Store
from tollway.settings import Settings


def rows(ident: str, now: int) -> list[tuple[str, str, int, str, str, int]]:
    minute, hour = now - now % 60, now - now % 3600
    return [(ident, "minute", minute, "svc", "route", minute + 60),
            (ident, "hour", hour, "svc", "route", hour + 3600)]


def test_counts_admitted_requests_only(store: Store, backend_settings: Settings) -> None:
    counters = Counters.open(backend_settings)
    try:
        now = 1_800_000_000
        r = rows("10.0.0.1", now)
        seen = [counters.check_and_incr(r, [3, 100], now) for _ in range(5)]
        assert seen == [[0, 0], [1, 1], [2, 2], [3, 3], [3, 3]]
        # rejected requests were not counted (Kong's cluster policy)
        assert counters.usage(r) == [3, 3]
        assert counters.usage(rows("10.0.0.2", now)) == [0, 0]
    finally:
        counters.close()


def test_two_nodes_never_admit_more_than_the_limit(store: Store,
                                                   backend_settings: Settings) -> None:
    # two Counters = two engines = two nodes' connections to the same database
    nodes = [Counters.open(backend_settings) for _ in range(2)]
    now, limit, per_thread = 1_800_000_000, 25, 10
    admitted: list[int] = []
    lock = threading.Lock()

    def hammer(c: Counters) -> None:
        for _ in range(per_thread):
            usage = c.check_and_incr(rows("shared", now)[:1], [limit], now)
            if usage[0] < limit:
                with lock:
                    admitted.append(usage[0])

    threads = [threading.Thread(target=hammer, args=(nodes[i % 2],)) for i in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(admitted) == list(range(limit))  # each slot taken exactly once
        assert nodes[0].usage(rows("shared", now)[:1]) == [limit]
    finally:
        for c in nodes:
            c.close()


def test_expired_rows_are_purged(store: Store, backend_settings: Settings) -> None:
    counters = Counters.open(backend_settings)
    try:
        old, now = 1_800_000_000, 1_800_000_000 + 7200
        counters.check_and_incr(rows("a", old), [10, 10], old)
        counters.check_and_incr(rows("a", now), [10, 10], now)
        # the old minute and hour windows have ended; the current ones have not
        assert counters.purge_expired(now) == 2
        assert counters.usage(rows("a", old)) == [0, 0]
        assert counters.usage(rows("a", now)) == [1, 1]
    finally:
        counters.close()
