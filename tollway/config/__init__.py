"""Declarative configuration (see docs/architecture.md, "tollway.config").

* ``loader``: ``load_file``/``load_text``/``parse_text`` (YAML or JSON, with source lines)
* ``declarative``: ``validate(document, locator=None) -> Config``
* ``model``: ``Config`` (normalised entities, ``hash``, ``to_declarative()``)
* ``errors``: ``ConfigError``/``ConfigErrorItem``
* ``schema`` + ``checks`` + ``typedefs``: the schema engine entities and plugins use
* ``entities``: Kong's entity schemas
* ``Builder`` (``builder``): config as code in Python, loaded on first use
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tollway.config.builder import Builder, BuildError

__all__ = ["BuildError", "Builder"]


def __getattr__(name: str) -> Any:
    # Lazy: the builder imports the declarative validator, which imports this package;
    # importing it eagerly here would be a cycle (and a cost for every `tollway.config.x`).
    if name in ("Builder", "BuildError"):
        from tollway.config import builder

        return getattr(builder, name)
    raise AttributeError(f"module 'tollway.config' has no attribute {name!r}")
