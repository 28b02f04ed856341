"""Fixtures for the rate-limiting integration tests: in-process gateways (the data-plane
helpers, imported from their directory) with their own prefix, and a raw-socket upstream."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dataplane"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "node"))

from dataplane_helpers import Gateway, LoopThread, Upstream


@pytest.fixture
def rl_upstream() -> Iterator[Upstream]:
    lt = LoopThread(use_uvloop=False, name="rl-upstream")
    up = Upstream(lt)
    yield up
    up.close()
    lt.stop()


@pytest.fixture
def rl_gateway(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    made: list[Gateway] = []

    def make(document: dict[str, Any], **overrides: str) -> Gateway:
        overrides.setdefault("prefix", str(tmp_path / "prefix"))
        gw = Gateway(document, overrides)
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.close()
