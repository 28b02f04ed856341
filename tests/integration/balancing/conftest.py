"""Fixtures for the balancing tests: a loop for the named targets, gateways closed after."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
for extra in (_HERE, _HERE.parent / "dataplane", _HERE.parent / "node"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from dataplane_helpers import LoopThread  # noqa: E402


@pytest.fixture
def target_loop() -> Iterator[LoopThread]:
    lt = LoopThread(use_uvloop=False, name="targets")
    yield lt
    lt.stop()


@pytest.fixture
def gateways() -> Iterator[list[object]]:
    made: list[object] = []
    yield made
    for g in made:
        g.close()  # type: ignore[attr-defined]
