"""Shared fixtures for the declarative-config tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from config_helpers import make_plugin  # noqa: E402

from tollway.plugins import registry  # noqa: E402

SEED_PLUGINS = ("rate-limiting", "jwt", "correlation-id", "prometheus", "cors")


@pytest.fixture
def dummy_plugins() -> Iterator[None]:
    for name in SEED_PLUGINS:
        registry.register(make_plugin(name))
    try:
        yield
    finally:
        for name in SEED_PLUGINS:
            registry.unregister(name)
