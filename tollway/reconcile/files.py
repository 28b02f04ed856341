"""State files → one validated ``Config`` (go-database-reconciler ``pkg/file``).

Pipeline per file: read (``-`` is stdin) → render templates (``templates.render``) → parse
YAML/JSON with source lines → merge the files (entity arrays concatenated, as decK does) →
``_info`` (select tags, entity defaults) taken out → Kong's declarative validation, which
fills every schema default (so a file and the running config compare without phantom diffs).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tollway.config.declarative import Locator, MergedLocator, validate
from tollway.config.errors import ConfigError
from tollway.config.loader import parse_text
from tollway.config.model import Config
from tollway.reconcile.templates import Environment, render, scale_rate_limits

__all__ = ["FileError", "State", "config_error_lines", "load_state", "merge_documents",
           "read_text"]


class FileError(ValueError):
    """A state file that cannot be read, rendered or merged (message names the file)."""


@dataclass
class State:
    config: Config
    document: dict[str, Any]  # the merged, rendered document (before validation)
    select_tags: list[str] = field(default_factory=list)
    substituted: list[str] = field(default_factory=list)  # env values, masked in output


def read_text(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    try:
        with open(name, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise FileError(f"{name}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise FileError(f"{name}: invalid UTF-8 ({exc.reason})") from None


def merge_documents(docs: list[tuple[str, Any]]) -> dict[str, Any]:
    """decK's ``file merge``: top-level arrays concatenated; ``_format_version`` and
    ``_transform`` must agree; other keys (``_info``) from the first file that has them."""
    merged: dict[str, Any] = {}
    for name, doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise FileError(f"{name}: expected an object at the top level")
        for key, value in doc.items():
            if key in ("_format_version", "_transform"):
                if key in merged and merged[key] != value:
                    raise FileError(f"{name}: {key} {value!r} differs from {merged[key]!r} in "
                                    f"an earlier file")
                merged[key] = value
            elif isinstance(value, list) and not key.startswith("_"):
                merged.setdefault(key, []).extend(value)
            elif key == "_info" and "_info" in merged and isinstance(value, dict):
                merged["_info"] = {**value, **merged["_info"]}
            else:
                merged.setdefault(key, value)
    return merged


_DEFAULTS_FOR = {"services": "service", "routes": "route", "upstreams": "upstream",
                 "targets": "target"}
_NESTED = {"services": ("routes", "plugins"), "routes": ("plugins",),
           "upstreams": ("targets",), "consumers": ("plugins", "keyauth_credentials",
                                                    "jwt_secrets"),
           "certificates": ("snis",)}


def _apply_defaults(doc: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    """``_info.defaults``: default field values merged into every entity of a kind."""
    def walk(key: str, rows: Any) -> None:
        if not isinstance(rows, list):
            return
        values = defaults.get(_DEFAULTS_FOR.get(key, ""))
        for row in rows:
            if not isinstance(row, dict):
                continue
            if isinstance(values, dict):
                for k, v in values.items():
                    row.setdefault(k, copy.deepcopy(v))
            for child in _NESTED.get(key, ()):
                walk(child, row.get(child))

    for key in list(doc):
        if not key.startswith("_"):
            walk(key, doc[key])


def load_state(files: list[str], *, env: Environment | None = None,
               select_tags: list[str] | None = None) -> State:
    """Read, render, merge and validate state files. Raises ``FileError`` or
    ``ConfigError`` (every validation error, each located in its file)."""
    environment = env or Environment.from_os()
    parts: list[tuple[Locator, dict[str, tuple[int, int]]]] = []
    docs: list[tuple[str, Any]] = []
    counts: dict[str, int] = {}
    for name in files:
        text = render(read_text(name), environment, source=name)
        label = name if name != "-" else None
        document, file_locator = parse_text(text, label if label and "." in label else
                                       (label + ".yaml" if label else None))
        spans: dict[str, tuple[int, int]] = {}
        if isinstance(document, dict):
            for key, value in document.items():
                if isinstance(value, list) and not key.startswith("_"):
                    spans[key] = (counts.get(key, 0), len(value))
                    counts[key] = counts.get(key, 0) + len(value)
        parts.append((file_locator, spans))
        docs.append((name, document))
    merged = merge_documents(docs)
    scale_rate_limits(merged, environment.rate_limit_multiplier)
    info = merged.pop("_info", None) or {}
    if not isinstance(info, dict):
        raise FileError("_info: expected an object")
    file_tags = list(info.get("select_tags") or [])
    flag_tags = list(select_tags or [])
    if file_tags and flag_tags and sorted(file_tags) != sorted(flag_tags):
        raise FileError(f"tags specified in the state file ({file_tags}) and via "
                        f"--select-tag flag ({flag_tags}) are different")
    if isinstance(info.get("defaults"), dict):
        _apply_defaults(merged, info["defaults"])
    locator: Locator = parts[0][0] if len(parts) == 1 else MergedLocator(parts)
    config = validate(copy.deepcopy(merged), locator)
    return State(config, merged, flag_tags or file_tags, environment.substituted)


def config_error_lines(exc: ConfigError) -> list[str]:
    """One ``FILE:LINE: PATH: MESSAGE`` line per error."""
    return [str(item) for item in exc.errors]
