"""The plugin registry: which plugins exist and how their ``config`` is validated.

A plugin class declares at least::

    class RateLimiting:
        name = "rate-limiting"
        config_schema = Record(fields={...}, entity_checks=[...])

Entity checks declared on ``config_schema`` itself are Kong's plugin-level checks
(``entity_checks = { { at_least_one_of = { "config.second", ... } } }`` in a Kong plugin
schema): `validate_plugin_config` reports their messages as the plugin entity's ``@entity``
errors, and the generic checks of ``tollway.config.checks`` name the fields ``config.<field>``
as Kong does. Checks of records nested inside ``config`` stay where they are.

and optionally ``protocols`` (the default of the plugin entity's ``protocols`` field) and
``no_consumer`` / ``no_route`` / ``no_service`` (Kong's ``typedefs.no_consumer`` & co.:
the plugin cannot be scoped that way).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from dataclasses import replace
from importlib.metadata import entry_points
from typing import Any, Protocol, TypeVar

from tollway.config.schema import ENTITY, Record

log = logging.getLogger("tollway.plugins")
ENTRY_POINT_GROUP = "tollway.plugins"

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
_SHADOWED: dict[str, list[Any]] = {}  # registrations hidden by a later one (tests, overrides)
_LOADED = False


def register(plugin_class: P) -> P:
    """Register a plugin class (usable as a class decorator); the last one wins, and
    `unregister` brings back the one it replaced."""
    name = getattr(plugin_class, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError("a plugin class needs a non-empty string attribute 'name'")
    if not isinstance(getattr(plugin_class, "config_schema", None), Record):
        raise ValueError(f"plugin '{name}' needs a schema Record as 'config_schema'")
    _ensure_loaded()
    previous = _PLUGINS.get(name)
    if previous is not None and previous is not plugin_class:
        _SHADOWED.setdefault(name, []).append(previous)
    _PLUGINS[name] = plugin_class
    return plugin_class


def unregister(name: str) -> None:
    _PLUGINS.pop(name, None)
    stack = _SHADOWED.get(name)
    if stack:
        _PLUGINS[name] = stack.pop()


def get(name: str) -> Any | None:
    _ensure_loaded()
    return _PLUGINS.get(name)


def names() -> list[str]:
    _ensure_loaded()
    return sorted(_PLUGINS)


def _ensure_loaded() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        load_bundled()


def load_bundled() -> list[str]:
    """Import every `tollway/plugins/<name>/handler.py` and register the plugin class(es) it
    defines: a bundled plugin is a folder, with no list to keep in sync."""
    import tollway.plugins as package
    from tollway.plugins.base import Plugin

    found = []
    for info in pkgutil.iter_modules(package.__path__):
        if not info.ispkg or info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"tollway.plugins.{info.name}.handler")
        except ModuleNotFoundError as exc:
            if exc.name != f"tollway.plugins.{info.name}.handler":
                raise
            continue  # a folder that is not (yet) a plugin
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, Plugin) and value is not Plugin
                    and value.__module__ == module.__name__ and "name" in vars(value)):
                _PLUGINS.setdefault(value.name, value)
                found.append(value.name)
    return found


def configure(setting: str) -> list[str]:
    """Apply Kong's `plugins` setting: `bundled` (every bundled plugin), `off` (none), plus
    names of custom plugins installed under the `tollway.plugins` entry-point group.
    Returns the names now enabled; raises ValueError naming an unknown plugin or a custom
    plugin that cannot be loaded. Idempotent: each call starts again from the bundled set
    (a bundled plugin disabled by an earlier call comes back, a custom one goes away)."""
    _ensure_loaded()
    tokens = [t.strip() for t in setting.split(",") if t.strip()]
    bundled = set(load_bundled())
    enabled: set[str] = set()
    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for token in tokens:
        if token == "bundled":
            enabled |= bundled
        elif token == "off":
            continue
        elif token in eps:
            try:
                cls = eps[token].load()
                register(cls)
            except Exception as exc:
                raise ValueError(f"plugins: cannot load {token!r} (entry point "
                                 f"{eps[token].value!r}): {type(exc).__name__}: {exc}"
                                 ) from exc
            enabled.add(getattr(cls, "name", token))
        elif token in bundled:
            enabled.add(token)
        else:
            raise ValueError(f"plugins: {token!r} is neither bundled nor installed as a "
                             f"'{ENTRY_POINT_GROUP}' entry point")
    for name in list(_PLUGINS):
        if name not in enabled:
            del _PLUGINS[name]
    return sorted(enabled)


def not_enabled_message(name: str) -> str:
    return f"plugin '{name}' not enabled; add it to the 'plugins' configuration property"


def validate_plugin_config(
    name: str, config: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate a plugin's ``config``; returns (config with defaults, plugin error table).

    The error table is at the plugin-entity level, e.g. ``{"config": {"second": "..."}}``,
    ``{"@entity": ["at least one of these fields must be non-empty: 'config.second', ..."]}``
    (the config record's own entity checks) or, for an unknown plugin,
    ``{"name": "plugin 'x' not enabled; ..."}``.
    """
    plugin = _PLUGINS.get(name)
    if plugin is None:
        return dict(config or {}), {"name": not_enabled_message(name)}
    if config is not None and not isinstance(config, dict):
        return {}, {"config": "expected a record"}
    schema = _plugin_level_schema(plugin.config_schema)
    normalised, config_errors = schema.validate(config or {})
    errors: dict[str, Any] = {}
    entity_errors = config_errors.pop(ENTITY, None)
    if config_errors:
        errors["config"] = config_errors
    if entity_errors:
        errors[ENTITY] = list(entity_errors)
    return normalised, errors


# id(config_schema) -> (config_schema, its plugin-level twin); the schema is kept alive so
# that its id is not reused
_PLUGIN_LEVEL: dict[int, tuple[Record, Record]] = {}


def _plugin_level_schema(schema: Record) -> Record:
    """``schema`` with its own entity checks (and its subschemas') worded as Kong's
    plugin-level checks: field names prefixed with ``config.``."""
    cached = _PLUGIN_LEVEL.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    if not any(c.prefixed for c in schema.entity_checks) and not any(
        c.prefixed for sub in schema.subschemas.values() for c in sub.entity_checks
    ):
        twin = schema
    else:
        twin = replace(
            schema,
            entity_checks=[c.with_prefix("config.") for c in schema.entity_checks],
            subschemas={
                key: replace(sub, entity_checks=[c.with_prefix("config.")
                                                 for c in sub.entity_checks])
                for key, sub in schema.subschemas.items()
            },
        )
    _PLUGIN_LEVEL[id(schema)] = (schema, twin)
    return twin
