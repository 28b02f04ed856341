"""Reading declarative files: YAML or JSON text → document (+ source lines) → ``Config``."""

from __future__ import annotations

import json
import os
from typing import Any

import yaml

from tollway.config.declarative import Locator, MergedLocator, Path, validate
from tollway.config.errors import ConfigError, ConfigErrorItem
from tollway.config.model import Config

__all__ = ["load_file", "load_files", "load_text", "parse_text"]

_PARSE_PREFIX = "failed parsing declarative configuration: "


def _syntax_error(
    message: str, line: int | None, column: int | None, filename: str | None
) -> ConfigError:
    where = f" (line {line}, column {column})" if line is not None and column is not None else ""
    text = f"{_PARSE_PREFIX}{message}{where}"
    item = ConfigErrorItem(filename or "<input>", text, line, filename)
    return ConfigError([item], {"error": text})


def _record_lines(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    """Walk the composed YAML node tree and note the line of every key and item."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key: str | int = key_node.value
            if key_node.tag == "tag:yaml.org,2002:int":
                try:
                    key = int(key_node.value)
                except ValueError:
                    pass
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            _record_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = (*path, i)
            lines[child] = item.start_mark.line + 1
            _record_lines(item, child, lines)


def _parse_yaml(text: str, filename: str | None) -> tuple[Any, Locator]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Path, int] = {}
        document = None
        if node is not None:
            lines[()] = node.start_mark.line + 1
            _record_lines(node, (), lines)
            document = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        raise _syntax_error(problem, line, column, filename) from None
    except yaml.YAMLError as exc:
        raise _syntax_error(str(exc), None, None, filename) from None
    finally:
        loader.dispose()
    return document, Locator(lines, filename)


def _parse_json(text: str, filename: str | None) -> tuple[Any, Locator]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _syntax_error(exc.msg, exc.lineno, exc.colno, filename) from None
    # JSON is (almost always) YAML too: reuse the YAML composer just to learn the lines.
    try:
        _, locator = _parse_yaml(text, filename)
    except ConfigError:
        locator = Locator({}, filename)
    return document, locator


def parse_text(text: str, filename: str | None = None) -> tuple[Any, Locator]:
    """Parse declarative text into (document, locator) without validating it.

    The format follows the file name's extension (``.json`` / ``.yml`` / ``.yaml``);
    without a name JSON is tried first, then YAML, as Kong does.
    """
    if filename is None:
        try:
            return _parse_json(text, None)
        except ConfigError:
            return _parse_yaml(text, None)
    lowered = filename.lower()
    if lowered.endswith("json"):
        return _parse_json(text, filename)
    if lowered.endswith(("yml", "yaml")):
        return _parse_yaml(text, filename)
    message = f"unknown file type: {os.path.basename(filename)}. (Accepted types: json, yaml)"
    raise ConfigError([ConfigErrorItem(filename, message, None, filename)], {"error": message})


def load_text(text: str, filename: str | None = None) -> Config:
    document, locator = parse_text(text, filename)
    return validate(document, locator)


def load_files(paths: list[str]) -> Config:
    """Several declarative files as one config, as decK merges state files: entity lists
    are concatenated (references may cross files), `_format_version` must agree."""
    if len(paths) == 1:
        return load_file(paths[0])
    merged: dict[str, Any] = {}
    parts: list[tuple[Locator, dict[str, tuple[int, int]]]] = []
    for name in paths:
        document, locator = parse_text(_read(name), name)
        if not isinstance(document, dict):
            message = "expected an object"
            raise ConfigError([ConfigErrorItem("<root>", message, 1, name)], {"error": message})
        spans: dict[str, tuple[int, int]] = {}
        for key, value in document.items():
            if key == "_format_version":
                if merged.setdefault(key, value) != value:
                    message = (f"_format_version {value!r} differs from {merged[key]!r} "
                               f"in {paths[0]}")
                    raise ConfigError([ConfigErrorItem(key, message, locator.line((key,)),
                                                       name)], {key: message})
            elif key == "_transform":
                merged[key] = bool(merged.get(key, True)) and bool(value)
            elif isinstance(value, list) and not key.startswith("_"):
                existing = merged.setdefault(key, [])
                spans[key] = (len(existing), len(value))
                existing.extend(value)
            else:
                merged.setdefault(key, value)
        parts.append((locator, spans))
    return validate(merged, MergedLocator(parts))


def _read(name: str) -> str:
    try:
        with open(name, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        message = f"failed reading declarative configuration: {exc.strerror or exc}"
        raise ConfigError(
            [ConfigErrorItem(name, message, None, name)], {"error": message}
        ) from None
    except UnicodeDecodeError as exc:
        message = f"{_PARSE_PREFIX}invalid UTF-8 ({exc.reason})"
        raise ConfigError(
            [ConfigErrorItem(name, message, None, name)], {"error": message}
        ) from None


def load_file(path: str | os.PathLike[str]) -> Config:
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        message = f"failed reading declarative configuration: {exc.strerror or exc}"
        raise ConfigError(
            [ConfigErrorItem(name, message, None, name)], {"error": message}
        ) from None
    except UnicodeDecodeError as exc:
        message = f"{_PARSE_PREFIX}invalid UTF-8 ({exc.reason})"
        raise ConfigError(
            [ConfigErrorItem(name, message, None, name)], {"error": message}
        ) from None
    return load_text(text, name)
