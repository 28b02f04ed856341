"""Helpers: validate a document and return its problems as (path, message) pairs."""

from __future__ import annotations

from typing import Any

import pytest

from tollway.config.declarative import validate
from tollway.config.errors import ConfigError
from tollway.config.model import Config
from tollway.config.schema import Record


def doc(**entities: Any) -> dict[str, Any]:
    return {"_format_version": "3.0", **entities}


def problems(document: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        validate(document)
    return [(item.path, item.message) for item in info.value.errors]


def ok(document: Any) -> Config:
    return validate(document)


def one(entity: str, **fields: Any) -> dict[str, Any]:
    """Validate a document with a single entity and return it normalised."""
    return ok(doc(**{entity: [fields]})).entities[entity][0]


def make_plugin(name: str, schema: Record | None = None, **attrs: object) -> type:
    """A throw-away plugin class; permissive (any config keys) unless a schema is given."""
    body = {"name": name, "config_schema": schema or Record(allow_unknown=True), **attrs}
    return type(f"Plugin_{name.replace('-', '_')}", (), body)
