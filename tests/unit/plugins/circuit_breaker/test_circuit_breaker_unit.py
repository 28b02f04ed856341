"""circuit-breaker: the state machine with an injected clock, the node table, the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tollway.plugins.circuit_breaker import breaker as b
from tollway.plugins.circuit_breaker.schema import config_schema
from tollway.plugins.circuit_breaker.table import NodeTable

S = b.Settings(failure_threshold=50, minimum_calls=4, window_size=10, cooldown=30,
               half_open_probes=2)


def fresh() -> b.Record:
    rec = b.Record(since=0.0)
    rec.configure(S)
    return rec


def test_opens_only_with_minimum_calls_and_threshold() -> None:
    rec = fresh()
    for _ in range(3):
        assert b.record(rec, S, 1.0, True, False) is None  # 3 calls < minimum 4
    assert b.record(rec, S, 1.0, False, False) is None     # 3/4 failed, but this one succeeded
    assert b.record(rec, S, 1.0, True, False) == "open"    # 4/5 = 80 % >= 50 %
    assert rec.state == b.OPEN and rec.since == 1.0 and "80.0%" in rec.reason


def test_old_failures_leave_the_window() -> None:
    rec = fresh()
    for _ in range(3):
        b.record(rec, S, 0.5, True, False)
    for _ in range(4):
        b.record(rec, S, 20.0, False, False)  # the window is 10 s: the failures are gone
    assert b.record(rec, S, 20.0, True, False) is None  # 1/5 = 20 %
    assert rec.window(20.0) == (5, 1)


def test_open_rejects_with_retry_after_then_half_open_probes() -> None:
    rec = fresh()
    rec.state, rec.since = b.OPEN, 100.0
    assert b.admit(rec, S, 110.0) == (False, False, 20)
    assert b.admit(rec, S, 129.5) == (False, False, 1)
    assert b.admit(rec, S, 130.0) == (True, True, 0)
    assert rec.state == b.HALF_OPEN
    assert b.admit(rec, S, 130.0) == (True, True, 0)
    assert b.admit(rec, S, 130.0)[0] is False  # two probes in flight: no third
    assert b.record(rec, S, 131.0, False, True) is None
    assert b.record(rec, S, 131.0, False, True) == "closed"
    assert rec.state == b.CLOSED and rec.window(131.0) == (0, 0)


def test_a_failed_probe_reopens() -> None:
    rec = fresh()
    rec.state, rec.since = b.OPEN, 0.0
    assert b.admit(rec, S, 30.0)[1]
    assert b.record(rec, S, 31.0, True, True) == "open"
    assert rec.since == 31.0 and rec.opens == 1


def test_a_lost_probe_frees_its_place_after_a_cooldown() -> None:
    rec = fresh()
    rec.state, rec.since = b.OPEN, 0.0
    b.admit(rec, S, 30.0)
    b.admit(rec, S, 30.0)
    assert not b.admit(rec, S, 40.0)[0]
    assert b.admit(rec, S, 60.0)[0]


def test_force_open_closed_auto() -> None:
    rec = fresh()
    b.force(rec, b.FORCED_OPEN, 5.0)
    assert rec.state == b.OPEN and b.admit(rec, S, 1000.0) == (False, False, 30)
    b.force(rec, b.FORCED_CLOSED, 6.0)
    for _ in range(10):
        assert b.record(rec, S, 7.0, True, False) is None
    assert rec.state == b.CLOSED and b.admit(rec, S, 7.0)[0]
    b.force(rec, b.FORCED_OPEN, 8.0)
    b.force(rec, b.AUTO, 9.0)
    assert rec.state == b.HALF_OPEN
    d = b.describe("orders", rec, 9.0)
    assert d["state"] == "half-open" and d["mode"] == "auto"


def test_record_round_trip_and_table(tmp_path: Path) -> None:
    rec = fresh()
    b.record(rec, S, 3.0, True, False)
    rec.reason = "é" * 10
    assert b.Record.unpack(rec.pack()) == rec
    t1 = NodeTable(tmp_path / "shm" / "cb.bin", b.SIZE)
    t2 = NodeTable(tmp_path / "shm" / "cb.bin", b.SIZE)  # another process's handle
    with t1.locked():
        off = t1.ensure("orders", rec.pack())
    assert t2.find("orders") is not None and t2.find("users") is None
    assert [(k, b.Record.unpack(p)) for k, p in t2.items()] == [("orders", rec)]
    t1.write(off, b"\x01")
    assert b.Record.unpack(dict(t2.items())["orders"]).state == b.OPEN
    # a different payload layout starts from an empty table
    assert NodeTable(tmp_path / "shm" / "cb.bin", b.SIZE + 8).items() == []


@pytest.mark.parametrize(("config", "errors"), [
    ({}, {}),
    ({"failure_threshold": 0}, {"failure_threshold": "value should be between 1 and 100"}),
    ({"minimum_calls": 0}, {"minimum_calls": "value should be between 1 and 1000000"}),
    ({"window_size": 0.5}, {"window_size": "value should be between 1 and 3600"}),
    ({"cooldown": "x"}, {"cooldown": "expected a number"}),
    ({"half_open_probes": 1.5}, {"half_open_probes": "expected an integer"}),
    ({"colour": 1}, {"colour": "unknown field"}),
])
def test_schema(config: dict[str, Any], errors: dict[str, Any]) -> None:
    value, errs = config_schema.validate(config)
    assert errs == errors
    if not errors:
        assert value == {"failure_threshold": 50, "minimum_calls": 20, "window_size": 10,
                         "cooldown": 30, "half_open_probes": 3}
