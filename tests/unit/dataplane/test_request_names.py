"""The request head's lookups by spelling and its forwarded lines in four parts."""

from __future__ import annotations

import pytest

from tollway.dataplane import request_head
from tollway.dataplane.request_head import H_HOST, H_XFF, drop_lines, request_name


def test_request_name_learns_each_spelling() -> None:
    assert request_name(b"HoSt") == (b"host", H_HOST)
    assert request_head.REQUEST_NAMES[b"HoSt"] == (b"host", H_HOST)
    assert request_name(b"X-Forwarded-FOR") == (b"x-forwarded-for", H_XFF)
    assert request_name(b"X-Plain") == (b"x-plain", None)


def test_request_names_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(request_head, "REQUEST_NAMES_MAX", 4)
    for i in range(20):
        request_name(b"X-Flood-%d" % i)
        assert len(request_head.REQUEST_NAMES) <= 4
    assert request_head.REQUEST_NAMES[b"X-Flood-19"] == (b"x-flood-19", None)


def test_long_names_are_answered_but_not_kept() -> None:
    long = b"X-" + b"a" * request_head.NAME_MAX
    assert request_name(long) == (long.lower(), None)
    assert long not in request_head.REQUEST_NAMES
    assert request_name(b"Content-Length") == (b"content-length", request_head.H_CLEN)


def test_drop_lines_keeps_whole_lines_in_order() -> None:
    parts = [b"X-A", b": ", b"1", b"\r\n", b"X-Secret", b": ", b"s", b"\r\n",
             b"x-b", b": ", b"x-secret: not a name", b"\r\n", b"X-SECRET", b": ", b"t", b"\r\n"]
    kept = drop_lines(parts, {b"x-secret"})
    assert b"".join(kept) == b"X-A: 1\r\nx-b: x-secret: not a name\r\n"
    assert drop_lines(parts, {b"x-none"}) == parts
    assert drop_lines([], {b"x-a"}) == []
    # any container of lower-case names: the plugins' overlay is a dict
    assert b"".join(drop_lines(parts, {b"x-a": 1, b"x-b": 2})) == b"X-Secret: s\r\nX-SECRET: t\r\n"
