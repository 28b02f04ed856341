"""The node's shared counter table: the home-slot fast path (`counted`) must agree with the
probing path (`check_and_incr`) request for request, and step aside when it cannot tell."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tollway.plugins.rate_limiting.counters import (
    SLOTS,
    MemoryCounters,
    SharedCounters,
)

NOW = 1_800_000_000


def admit(table: SharedCounters, keys: list[int], ends: list[int], limits: list[float],
          now: int = NOW) -> list[int]:
    """What the handler does: the fast path first, the probing path when it steps aside."""
    usages = table.counted(table.home_words(keys), keys, limits)
    if usages is None:
        usages = table.check_and_incr(keys, ends, limits, now)
    return usages


def admit_pair(table: SharedCounters, keys: list[int], ends: list[int],
               limits: list[float], now: int = NOW) -> list[int]:
    """The same with counted_pair, the two-window form of counted."""
    pair = table.counted_pair(table.pair_words(keys), limits[0], limits[1])
    return list(pair) if pair is not None else table.check_and_incr(keys, ends, limits, now)


@pytest.mark.parametrize("fast", [admit, admit_pair])
@pytest.mark.parametrize("locked", [False, True])
def test_fast_path_agrees_with_the_reference(tmp_path: Path, locked: bool,
                                             fast: Callable[..., list[int]]) -> None:
    table = SharedCounters(tmp_path / "rl.bin", locked=locked)
    reference = MemoryCounters()
    rng = random.Random(7)
    idents = [(rng.getrandbits(63) | 1, rng.getrandbits(63) | 1) for _ in range(20)]
    ends = [NOW + 1, NOW + 60]
    limits: list[float] = [5, 12]
    rejected = 0
    for _ in range(600):
        keys = list(rng.choice(idents))
        got = fast(table, keys, ends, limits)
        assert got == reference.check_and_incr(keys, ends, limits, NOW)
        rejected += any(u >= lim for u, lim in zip(got, limits, strict=True))
    assert rejected > 0  # the limits were reached, so the no-increment case ran
    # another key in a home slot: both fast paths step aside
    other = [idents[0][0] + SLOTS, idents[0][1]]
    assert table.counted(table.home_words(other), other, limits) is None
    assert table.counted_pair(table.pair_words(other), 100, 100) is None
    table.close()


def test_steps_aside_until_the_window_is_claimed(tmp_path: Path) -> None:
    table = SharedCounters(tmp_path / "rl.bin", locked=False)
    keys, ends, limits = [11, 22], [NOW + 1, NOW + 60], [10.0, 10.0]
    words = table.home_words(keys)
    assert table.counted(words, keys, limits) is None  # nothing counted yet
    assert table.check_and_incr(keys, ends, limits, NOW) == [0, 0]
    assert table.counted(words, keys, limits) == [1, 1]
    assert table.counted(words, keys, limits) == [2, 2]
    assert table.get(11, NOW) == 3 and table.get(22, NOW) == 3
    table.close()


def test_steps_aside_when_another_key_holds_the_home_slot(tmp_path: Path) -> None:
    table = SharedCounters(tmp_path / "rl.bin", locked=False)
    first, second = 5, 5 + SLOTS  # the same home slot
    ends, limits = [NOW + 60], [100.0]
    table.check_and_incr([first], ends, limits, NOW)
    assert table.counted(table.home_words([second]), [second], limits) is None
    assert table.check_and_incr([second], ends, limits, NOW) == [0]  # probed, next slot
    assert table.counted(table.home_words([second]), [second], limits) is None
    assert admit(table, [second], ends, limits) == [1]
    assert table.get(first, NOW) == 1  # the home slot's own counter is untouched
    table.close()


def test_a_rejected_request_is_not_counted(tmp_path: Path) -> None:
    table = SharedCounters(tmp_path / "rl.bin", locked=False)
    keys, ends, limits = [7, 8], [NOW + 1, NOW + 60], [2.0, 100.0]
    assert [admit(table, keys, ends, limits) for _ in range(4)] == [
        [0, 0], [1, 1], [2, 2], [2, 2]]
    assert table.get(8, NOW) == 2  # the minute window did not count the rejected ones
    table.close()


def test_workers_share_one_table(tmp_path: Path) -> None:
    a = SharedCounters(tmp_path / "rl.bin", locked=True)
    b = SharedCounters(tmp_path / "rl.bin", locked=True)
    keys, ends, limits = [99], [NOW + 60], [5.0]
    seen = [admit(a if i % 2 else b, keys, ends, limits)[0] for i in range(7)]
    assert seen == [0, 1, 2, 3, 4, 5, 5]
    a.close()
    b.close()
