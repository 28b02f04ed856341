"""rate-limiting's unrolled access (`_access_pair`: local policy, two windows, one-worker
node) must answer every request exactly as the general access does: the same headers, the
same counts, the same 429s, across window boundaries, identifiers and collisions."""

from __future__ import annotations

import functools
import random
from pathlib import Path
from typing import Any

import pytest
from test_rate_limiting_headers import Req as FinishReq

from tollway import settings as settings_mod
from tollway.plugins.base import BuildContext
from tollway.plugins.rate_limiting import handler
from tollway.plugins.rate_limiting.handler import RateLimiting
from tollway.plugins.rate_limiting.schema import config_schema


class Req(FinishReq):
    """What access reads and writes: finish's fake, and who the request comes from."""

    def __init__(self, consumer: dict[str, Any] | None, ip: str) -> None:
        super().__init__()
        self.consumer = consumer
        self.credential = None
        self.client_ip = ip

    def outcome(self) -> tuple[list[bytes], tuple[int, str] | None, bool]:
        return [b[1] for b in self.resp_extra or []], self.rejected, \
            self.ctx.get("rate_limit_exceeded", False)


def plugin(tmp_path: Path, name: str, workers: int, **config: Any) -> RateLimiting:
    settings = settings_mod.load(env={
        "TOLLWAY_PREFIX": str(tmp_path / name), "TOLLWAY_WORKERS": str(workers),
        "TOLLWAY_DATABASE": "off"})
    validated, errors = config_schema.validate({"policy": "local", **config})
    assert not errors
    return RateLimiting(validated, {"id": "p1", "route": {"id": "r1"}},
                        BuildContext(settings=settings))


@pytest.mark.parametrize("workers", [1, 2])  # 2: the node's table is locked
@pytest.mark.parametrize("limit_by", ["consumer", "ip"])
def test_unrolled_access_answers_as_the_general_one(tmp_path: Path, limit_by: str,
                                                    workers: int,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fast = plugin(tmp_path, "fast", workers, second=8, minute=60, limit_by=limit_by)
    general = plugin(tmp_path, "general", workers, second=8, minute=60, limit_by=limit_by)
    assert fast.local.locked is (workers > 1)
    assert fast.access.__func__ is RateLimiting._access_pair  # type: ignore[attr-defined]
    general.access = functools.partial(RateLimiting.access, general)  # type: ignore[method-assign]
    rng = random.Random(3)
    clock = [1_800_000_000.0]
    monkeypatch.setattr(handler, "_time", lambda: clock[0])
    consumers = [{"id": f"c{i}"} for i in range(3)] + [None]
    general_way = RateLimiting.access
    fallbacks = [0]

    def counted(self: RateLimiting, req: Any) -> Any:
        fallbacks[0] += self is fast
        return general_way(self, req)

    monkeypatch.setattr(RateLimiting, "access", counted)
    admitted = 0
    for _ in range(600):
        # mostly within a second (where the unrolled form answers), now and then into
        # the next second or minute (the general way starts the windows)
        r = rng.random()
        clock[0] += 61.0 if r < 0.01 else 1.0 if r < 0.05 else 0.01
        consumer = rng.choice(consumers)
        ip = rng.choice(("10.0.0.1", "10.0.0.2"))
        a, b = Req(consumer, ip), Req(consumer, ip)
        fast.access(a)
        general.access(b)
        assert a.outcome() == b.outcome()
        admitted += a.rejected is None
    # some were rejected (429, answered the general way), the same way by both; most
    # admitted ones were answered by the unrolled form
    rejected = 600 - admitted
    assert admitted > 150 and rejected > 20
    assert fallbacks[0] - rejected < admitted / 2


def test_other_configs_keep_the_general_access(tmp_path: Path) -> None:
    # one window, three windows, hidden headers: no unrolled form
    for name, workers, config in (("three", 2, {"second": 3, "minute": 7, "hour": 9}),
                                  ("one", 1, {"minute": 7}),
                                  ("hidden", 1, {"second": 3, "minute": 7,
                                                 "hide_client_headers": True})):
        p = plugin(tmp_path, name, workers, **config)
        assert p.access.__func__ is RateLimiting.access  # type: ignore[attr-defined]
