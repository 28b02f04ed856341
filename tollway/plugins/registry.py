"""The plugin registry: which plugins exist and how their ``config`` is validated.

A plugin class declares at least::

    class RateLimiting:
        name = "rate-limiting"
        config_schema = Record(fields={...}, entity_checks=[...])

and optionally ``protocols`` (the default of the plugin entity's ``protocols`` field) and
``no_consumer`` / ``no_route`` / ``no_service`` (Kong's ``typedefs.no_consumer`` & co.:
the plugin cannot be scoped that way).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from tollway.config.schema import Record

__all__ = [
    "PluginClass",
    "get",
    "names",
    "not_enabled_message",
    "register",
    "unregister",
    "validate_plugin_config",
]


class PluginClass(Protocol):
    name: str
    config_schema: Record


P = TypeVar("P")

_PLUGINS: dict[str, Any] = {}


def register(plugin_class: P) -> P:
    """Register a plugin class (usable as a class decorator); the last one wins."""
    name = getattr(plugin_class, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError("a plugin class needs a non-empty string attribute 'name'")
    if not isinstance(getattr(plugin_class, "config_schema", None), Record):
        raise ValueError(f"plugin '{name}' needs a schema Record as 'config_schema'")
    _PLUGINS[name] = plugin_class
    return plugin_class


def unregister(name: str) -> None:
    _PLUGINS.pop(name, None)


def get(name: str) -> Any | None:
    return _PLUGINS.get(name)


def names() -> list[str]:
    return sorted(_PLUGINS)


def not_enabled_message(name: str) -> str:
    return f"plugin '{name}' not enabled; add it to the 'plugins' configuration property"


def validate_plugin_config(
    name: str, config: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate a plugin's ``config``; returns (config with defaults, plugin error table).

    The error table is at the plugin-entity level, e.g. ``{"config": {"second": "..."}}``
    or, for an unknown plugin, ``{"name": "plugin 'x' not enabled; ..."}``.
    """
    plugin = _PLUGINS.get(name)
    if plugin is None:
        return dict(config or {}), {"name": not_enabled_message(name)}
    if config is not None and not isinstance(config, dict):
        return {}, {"config": "expected a record"}
    schema: Record = plugin.config_schema
    normalised, errors = schema.validate(config or {})
    return normalised, ({"config": errors} if errors else {})
