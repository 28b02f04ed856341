"""Shared fixtures for the declarative-config tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tollway.config.schema import Record  # noqa: E402
from tollway.plugins import registry  # noqa: E402

SEED_PLUGINS = ("rate-limiting", "jwt", "correlation-id", "prometheus", "cors")


def make_plugin(name: str, schema: Record | None = None, **attrs: object) -> type:
    """A throw-away plugin class; permissive (any config keys) unless a schema is given."""
    body = {"name": name, "config_schema": schema or Record(allow_unknown=True), **attrs}
    return type(f"Plugin_{name.replace('-', '_')}", (), body)


@pytest.fixture
def dummy_plugins() -> Iterator[None]:
    for name in SEED_PLUGINS:
        registry.register(make_plugin(name))
    try:
        yield
    finally:
        for name in SEED_PLUGINS:
            registry.unregister(name)
