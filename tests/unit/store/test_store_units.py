"""Store logic without a database: If-Match matching, the field-level diff, pagination
tokens, the rollback body, PostgreSQL URLs from the pg_* settings."""

from __future__ import annotations

import pytest

from tollway import settings as settings_mod
from tollway.controlplane.admin.errors import AdminError
from tollway.controlplane.admin.revisions import (
    _offset,
    _rollback_body,
    _size,
    _token,
    field_changes,
)
from tollway.controlplane.store import StoreError, if_match_ok
from tollway.controlplane.store.engine import describe, pg_url

H = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("header", "ok"), [
    (f'"{H}"', True), (H, True), ("*", True), (f'"x", "{H}"', True),
    (f'W/"{H}"', False), ('"other"', False), ("", False),
])
def test_if_match(header: str, ok: bool) -> None:
    assert if_match_ok(header, H) is ok


def test_field_changes_walk_records_and_compare_lists_whole() -> None:
    old = {"host": "a", "config": {"minute": 5, "hour": None, "redis": {"port": 1}},
           "paths": ["/a"], "gone": 1}
    new = {"host": "a", "config": {"minute": 6, "hour": None, "redis": {"port": 2}},
           "paths": ["/a", "/b"], "added": True}
    assert field_changes(old, new) == [
        {"field": "added", "old": None, "new": True},
        {"field": "config.minute", "old": 5, "new": 6},
        {"field": "config.redis.port", "old": 1, "new": 2},
        {"field": "gone", "old": 1, "new": None},
        {"field": "paths", "old": ["/a"], "new": ["/a", "/b"]},
    ]


def test_offset_tokens_round_trip_and_bad_ones_are_kong_code_7() -> None:
    assert _offset(_token(42)) == 42
    for bad, why in (("!!", "bad base64"), ("Zm9v", "bad json")):
        with pytest.raises(AdminError) as info:
            _offset(bad)
        assert info.value.code == 7 and why in info.value.text


@pytest.mark.parametrize(("raw", "text"), [
    ("x", "size must be a number"), ("0", "between 1 and 1000"), ("1001", "between 1 and")])
def test_size_errors(raw: str, text: str) -> None:
    with pytest.raises(AdminError) as info:
        _size(raw)
    assert info.value.code == 9 and text in info.value.text


def test_rollback_body() -> None:
    assert _rollback_body(b'{"revision": 3, "message": "why"}') == (3, "why")
    assert _rollback_body(b'{"revision": 3}') == (3, None)
    with pytest.raises(AdminError) as info:
        _rollback_body(b'{"revision": true, "message": 5}')
    assert info.value.code == 2
    assert info.value.fields == {"revision": "expected a positive integer",
                                 "message": "expected a string"}
    with pytest.raises(AdminError) as info:
        _rollback_body(b"{")
    assert info.value.status == 400 and info.value.text == "Cannot parse JSON body"


def test_pg_url_from_settings_and_never_the_password_in_messages() -> None:
    s = settings_mod.load(env={"TOLLWAY_DATABASE": "postgres", "TOLLWAY_PG_HOST": "db",
                               "TOLLWAY_PG_PORT": "6543", "TOLLWAY_PG_USER": "u",
                               "TOLLWAY_PG_PASSWORD": "s3cret", "TOLLWAY_PG_DATABASE": "d"})
    url = pg_url(s)
    assert (url.drivername, url.host, url.port, url.username, url.password, url.database) == (
        "postgresql+psycopg", "db", 6543, "u", "s3cret", "d")
    assert "s3cret" not in describe(s) and "'d' at db:6543" in describe(s)
    bad = settings_mod.load(env={"TOLLWAY_DATABASE": "postgres", "TOLLWAY_PG_PORT": "x"})
    with pytest.raises(StoreError, match="pg_port: expected an integer"):
        pg_url(bad)
