"""canary: schedule, p95, rollback decision, record layout, schema."""

from __future__ import annotations

from typing import Any

import pytest

from tollway.plugins.canary import state as s
from tollway.plugins.canary.schema import config_schema

STEPS = [(10.0, 60.0), (50.0, 60.0), (100.0, 0.0)]


@pytest.mark.parametrize(("elapsed", "expected"), [
    (0, (0, 10.0, 60.0)), (59.9, (0, 10.0, 60.0)), (60, (1, 50.0, 120.0)),
    (120, (2, 100.0, None)), (1e9, (2, 100.0, None)),
])
def test_schedule(elapsed: float, expected: tuple[Any, ...]) -> None:
    assert s.schedule(STEPS, elapsed) == expected


def test_last_step_with_a_duration_holds() -> None:
    assert s.schedule([(10.0, 5.0), (20.0, 5.0)], 100) == (1, 20.0, None)


def side(requests: int, errors: int, latency_ms: float) -> s.Side:
    sd = s.Side(requests, errors)
    sd.hist[s.bucket(latency_ms)] = requests
    return sd


T = s.Thresholds(max_error_rate_increase=5, max_latency_ratio=1.5, min_samples=20,
                 min_latency_increase=50)


def rec(stable: s.Side, canary: s.Side) -> s.Record:
    return s.Record(steps=STEPS, sides=[stable, canary])


def test_judge() -> None:
    assert s.judge(rec(side(100, 0, 10), side(19, 19, 10)), T) is None  # too few samples
    why = s.judge(rec(side(100, 1, 10), side(20, 2, 10)), T)
    assert why is not None and why.startswith("canary error rate 10.0% (2/20)")
    assert s.judge(rec(side(100, 5, 10), side(20, 2, 10)), T) is None  # 10 % vs 5 %: +5
    assert s.judge(rec(side(5, 0, 10), side(20, 2, 10)), T) is not None  # stable baseline 0
    why = s.judge(rec(side(100, 0, 10), side(20, 0, 100)), T)
    assert why is not None and why.startswith("canary p95 latency")
    assert s.judge(rec(side(5, 0, 10), side(20, 0, 100)), T) is None  # no stable latency
    assert s.judge(rec(side(100, 0, 2), side(20, 0, 7)), T) is None  # 3.5 x, but only 5 ms


def test_p95_and_record_round_trip() -> None:
    sd = s.Side(100, 0)
    sd.hist[s.bucket(5)] = 95
    sd.hist[s.bucket(1000)] = 5
    assert 5 <= (sd.p95_ms() or 0) < 6.25
    r = s.Record(7, 100.0, STEPS, "a", "b", True, 130.0, "why", [sd, s.Side()])
    assert s.Record.unpack(r.pack()) == r
    assert s.weight(r, 200.0) == 0.0
    d = s.describe("shop", r, 200.0)
    assert d["status"] == "rolled_back" and d["reason"] == "why" and d["step"] == 2


@pytest.mark.parametrize(("config", "errors"), [
    ({"stable_upstream": "a", "canary_upstream": "b"}, {}),
    ({"canary_upstream": "b"}, {"stable_upstream": "required field missing"}),
    ({"stable_upstream": "a", "canary_upstream": "a"},
     {"@entity": ["stable_upstream and canary_upstream must be different upstreams"]}),
    ({"stable_upstream": "a", "canary_upstream": "b", "hash_on": "header"},
     {"hash_on_header": "required field missing",
      "@entity": ["failed conditional validation given value of field 'hash_on'"]}),
    ({"stable_upstream": "a", "canary_upstream": "b", "hash_on": "path"},
     {"hash_on": "expected one of: none, ip, header, cookie"}),
    ({"stable_upstream": "a", "canary_upstream": "b", "steps": [{"percent": 5}, {"percent": 9}]},
     {"@entity": ["every step but the last needs a duration greater than 0"]}),
    ({"stable_upstream": "a", "canary_upstream": "b", "steps": [{"percent": 101}]},
     {"steps": {0: {"percent": "value should be between 0 and 100"}}}),
])
def test_schema(config: dict[str, Any], errors: dict[str, Any]) -> None:
    assert config_schema.validate(config)[1] == errors
