"""rate-limiting config schema: defaults, every validation message, shorthands."""

from __future__ import annotations

from typing import Any

import pytest

from tollway.plugins.rate_limiting.counters import MemoryCounters
from tollway.plugins.rate_limiting.schema import config_schema
from tollway.plugins.rate_limiting.windows import window_starts

AT_LEAST = ("at least one of these fields must be non-empty: 'config.second', 'config.minute', "
            "'config.hour', 'config.day', 'config.month', 'config.year'")
COND_POLICY = "failed conditional validation given value of field 'config.policy'"
COND_LIMIT_BY = "failed conditional validation given value of field 'config.limit_by'"


def test_defaults() -> None:
    out, errors = config_schema.validate({"minute": 5})
    assert errors == {}
    assert out["limit_by"] == "consumer" and out["policy"] == "local"
    assert out["fault_tolerant"] is True and out["hide_client_headers"] is False
    assert out["error_code"] == 429 and out["error_message"] == "API rate limit exceeded"
    assert out["sync_rate"] == -1
    assert out["redis"] == {"host": None, "port": 6379, "timeout": 2000,
                            "connect_timeout": None, "send_timeout": None,
                            "read_timeout": None, "username": None, "password": None,
                            "database": 0, "ssl": False, "ssl_verify": False,
                            "server_name": None}
    # reads show the flat 3.5 fields too (Kong's translate_backwards)
    assert out["redis_port"] == 6379 and out["redis_timeout"] == 2000
    assert out["redis_host"] is None


CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({}, {"@entity": [AT_LEAST]}),
    ({"minute": 0}, {"minute": "value must be greater than 0"}),
    ({"second": -1}, {"second": "value must be greater than 0"}),
    ({"hour": "x"}, {"hour": "expected a number"}),
    ({"minute": 20, "hour": 10},
     {"@entity": ["The limit for hour(10.0) cannot be lower than the limit for minute(20.0)"]}),
    ({"second": 5, "year": 4.5},
     {"@entity": ["The limit for year(4.5) cannot be lower than the limit for second(5.0)"]}),
    ({"minute": 1, "limit_by": "foo"},
     {"limit_by": "expected one of: consumer, credential, ip, service, header, path"}),
    ({"minute": 1, "policy": "foo"}, {"policy": "expected one of: local, cluster, redis"}),
    ({"minute": 1, "limit_by": "header"},
     {"header_name": "required field missing", "@entity": [COND_LIMIT_BY]}),
    ({"minute": 1, "limit_by": "path"},
     {"path": "required field missing", "@entity": [COND_LIMIT_BY]}),
    ({"minute": 1, "limit_by": "header", "header_name": "a b"},
     {"header_name": "bad header name 'a b', allowed characters are A-Z, a-z, 0-9, '_', and '-'"}),
    ({"minute": 1, "limit_by": "path", "path": "x"}, {"path": "should start with: /"}),
    ({"minute": 1, "policy": "redis"},
     {"redis": {"host": "required field missing"}, "@entity": [COND_POLICY]}),
    ({"minute": 1, "policy": "redis", "redis": {"host": "h", "port": None}},
     {"redis": {"port": "required field missing"}, "@entity": [COND_POLICY]}),
    ({"minute": 1, "policy": "redis", "redis": {"host": "h", "timeout": None}},
     {"redis": {"timeout": "required field missing"}, "@entity": [COND_POLICY]}),
    ({"minute": 1, "sync_rate": 1},
     {"@entity": ["sync_rate can only be used with the redis policy"]}),
    ({"minute": 1, "policy": "redis", "redis_host": "h", "sync_rate": 0.01},
     {"@entity": ["sync_rate must be greater than 0.02, or -1 to disable"]}),
    ({"minute": 1, "error_code": 0}, {"error_code": "value must be greater than 0"}),
    ({"minute": 1, "redis_port": "x"}, {"redis_port": "expected an integer"}),
    ({"minute": 1, "redis": {"port": 70000}},
     {"redis": {"port": "value should be between 0 and 65535"}}),
    ({"minute": 1, "redis": {"host": "bad host"}}, {"redis": {"host": "invalid value: bad host"}}),
    ({"minute": 1, "redis": {"server_name": "1.2.3.4"}},
     {"redis": {"server_name": "must not be an IP"}}),
    ({"minute": 1, "fault_tolerant": None}, {"fault_tolerant": "required field missing"}),
    ({"minute": 1, "bogus": 1}, {"bogus": "unknown field"}),
]


@pytest.mark.parametrize(("config", "errors"), CASES)
def test_errors(config: dict[str, Any], errors: dict[str, Any]) -> None:
    assert config_schema.validate(config)[1] == errors


def test_flat_redis_fields_are_shorthands() -> None:
    out, errors = config_schema.validate({
        "minute": 1, "policy": "redis", "redis_host": "redis", "redis_port": 6380,
        "redis_password": "", "redis_username": "u", "redis_ssl": True,
        "redis_ssl_verify": True, "redis_server_name": "r.example", "redis_timeout": 100,
        "redis_database": 3})
    assert errors == {}
    assert out["redis"] == {"host": "redis", "port": 6380, "timeout": 100,
                            "connect_timeout": None, "send_timeout": None,
                            "read_timeout": None, "username": "u", "password": "",
                            "database": 3, "ssl": True, "ssl_verify": True,
                            "server_name": "r.example"}
    assert out["redis_host"] == "redis" and out["redis_database"] == 3
    # the normalised form validates back to itself
    again, errors = config_schema.validate(out)
    assert errors == {} and again == out


def test_record_wins_over_flat_field() -> None:
    out, _ = config_schema.validate({"minute": 1, "redis": {"host": "a"}, "redis_host": "b"})
    assert out["redis"]["host"] == "a"


def test_seed_config_validates() -> None:
    _, errors = config_schema.validate({"second": 10, "minute": 100, "policy": "redis",
                                        "redis_host": "redis", "redis_port": 6379,
                                        "fault_tolerant": True})
    assert errors == {}


def test_memory_counters_do_not_count_rejections() -> None:
    c = MemoryCounters()
    keys, ends = [1, 2], [110, 160]
    got = [c.check_and_incr(keys, ends, [2, 10], 100) for _ in range(4)]
    assert got == [[0, 0], [1, 1], [2, 2], [2, 2]]
    assert c.check_and_incr(keys, ends, [2, 10], 110) == [0, 2]  # the first window expired


def test_window_starts_calendar_aligned() -> None:
    # 2024-02-29 13:45:30 UTC
    now = 1709214330
    s = window_starts(now)
    assert s == {"second": now, "minute": 1709214300, "hour": 1709211600, "day": 1709164800,
                 "month": 1706745600, "year": 1704067200}
