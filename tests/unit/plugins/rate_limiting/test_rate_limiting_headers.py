"""rate-limiting's response headers: the admitted fast path (one %-template per request)
against the general loop, which also serves rejections and fractional limits."""

from __future__ import annotations

import random
from typing import Any

from tollway.plugins.base import BuildContext, HeaderNames
from tollway.plugins.rate_limiting.handler import RateLimiting
from tollway.plugins.rate_limiting.schema import config_schema


class Req:
    """What finish touches of the exchange: the admitted fast path appends its block to
    `resp_extra` itself (PluginAPI.set_response_headers without the call), the rest calls
    set_response_headers."""

    def __init__(self) -> None:
        self.resp_extra: list[Any] | None = None
        self.ctx: dict[str, Any] = {}
        self.rejected: tuple[int, str] | None = None

    def set_response_headers(self, items: list[Any]) -> None:
        self.resp_extra = (self.resp_extra or []) + items

    def error(self, status: int, message: str) -> None:
        self.rejected = (status, message)


def plugin(**limits: float) -> RateLimiting:
    config, errors = config_schema.validate({**limits, "policy": "local"})
    assert not errors
    return RateLimiting(config, {"id": "p1"}, BuildContext(offline=True))


def headers(p: RateLimiting, usages: list[int], now: int, ends: list[int]) -> tuple[bytes, bool]:
    req = Req()
    rejected = p.finish(req, usages, now, ends)
    [block] = req.resp_extra or []
    names, lines = block  # a HeaderBlock, or the plain (names, lines) tuple of base.Block
    assert names.__class__ is HeaderNames
    return lines, rejected


def test_fast_path_matches_the_general_path() -> None:
    rng = random.Random(7)
    for limits in ({"second": 5, "minute": 100}, {"minute": 3, "hour": 3, "day": 50},
                   {"second": 1}, {"hour": 40}, {"day": 7, "year": 7},
                   {"second": 10, "minute": 10, "hour": 10, "month": 900}):
        fast = plugin(**limits)
        general = plugin(**limits)
        assert fast.templates is not None
        general.templates = None  # force the loop
        for _ in range(500):
            usages = [rng.randint(0, int(lim) + 1) for lim in fast.limits]
            now = 1_700_000_000 + rng.randint(0, 100_000)
            ends = [now + rng.randint(-2, 4000) for _ in usages]
            assert headers(fast, usages, now, ends) == headers(general, usages, now, ends)


def test_admitted_headers_exactly() -> None:
    p = plugin(second=5, minute=100)
    lines, rejected = headers(p, [4, 4], 1000, [1001, 1060])
    assert not rejected
    # the second window has 0 left (4 used + this one of 5): it is the smallest remaining
    assert lines == (b"X-RateLimit-Limit-Second: 5\r\nX-RateLimit-Remaining-Second: 0\r\n"
                     b"X-RateLimit-Limit-Minute: 100\r\nX-RateLimit-Remaining-Minute: 95\r\n"
                     b"RateLimit-Limit: 5\r\nRateLimit-Remaining: 0\r\nRateLimit-Reset: 1\r\n")
    # a tie goes to the longer window, and its reset
    lines, _ = headers(plugin(minute=10, hour=10), [3, 3], 1000, [1020, 3600])
    assert lines.endswith(b"RateLimit-Limit: 10\r\nRateLimit-Remaining: 6\r\n"
                          b"RateLimit-Reset: 2600\r\n")


def test_fractional_limits_take_the_general_path() -> None:
    p = plugin(second=2.5)
    assert p.templates is None
    lines, rejected = headers(p, [1], 1000, [1001])
    assert not rejected
    assert b"X-RateLimit-Limit-Second: 2.5\r\nX-RateLimit-Remaining-Second: 0.5\r\n" in lines
