"""Helpers: validate a document and return its problems as (path, message) pairs."""

from __future__ import annotations

from typing import Any

import pytest

from tollway.config.declarative import validate
from tollway.config.errors import ConfigError
from tollway.config.model import Config


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
