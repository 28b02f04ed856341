"""Template rendering of state files, before they are parsed.

Two syntaxes, both substituted inside a line of text:

* decK's ``${{ env "DECK_X" }}`` (§6.5): only ``DECK_``-prefixed variables; an unset one is
  an error; expressions on YAML comment lines are left alone.
* envsubst's ``${VAR}`` and the shell's ``${VAR:-default}`` (the seed's
  ``generate-env-config.sh``). Bare ``$VAR`` is *not* substituted: ``$`` ends Kong's regex
  paths (``~/api/users$``). An unset variable without a default is an error naming it
  (envsubst would write an empty string; an empty host is never what was meant).

Per-environment overlays: ``Environment.load(base_file, "production")`` reads
``environments/production.yaml`` beside the base file::

    vars:                       # variables for the templates (the process env wins)
      REDIS_HOST: redis.prod.internal
    rate_limit_multiplier: 2    # the seed's RATE_LIMIT_MULT: every rate-limiting limit × 2
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_DECK = re.compile(r"\$\{\{\s*env\s+\"([^\"]*)\"\s*\}\}")
_SHELL = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
RATE_LIMIT_FIELDS = ("second", "minute", "hour", "day", "month", "year")


class TemplateError(ValueError):
    pass


@dataclass
class Environment:
    variables: dict[str, str]
    rate_limit_multiplier: float = 1
    name: str | None = None
    substituted: list[str] = field(default_factory=list)

    @classmethod
    def from_os(cls, extra: Mapping[str, str] | None = None) -> Environment:
        return cls({**(extra or {}), **os.environ})

    @classmethod
    def load(cls, base_file: str | None, env_name: str | None,
             env_dir: str | None = None) -> Environment:
        if not env_name:
            return cls.from_os()
        folder = Path(env_dir) if env_dir else (
            Path(base_file).parent if base_file and base_file != "-" else Path(".")
        ) / "environments"
        path = folder / f"{env_name}.yaml"
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise TemplateError(f"environment {env_name!r}: cannot read {path}: "
                                f"{exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise TemplateError(f"{path}: invalid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise TemplateError(f"{path}: expected an object with 'vars'")
        unknown = set(data) - {"vars", "rate_limit_multiplier"}
        if unknown:
            raise TemplateError(f"{path}: unknown key(s): {', '.join(sorted(unknown))}")
        values = data.get("vars") or {}
        if not isinstance(values, dict):
            raise TemplateError(f"{path}: vars: expected an object")
        variables = {str(k): _scalar(v) for k, v in values.items()}
        mult = data.get("rate_limit_multiplier", variables.get("RATE_LIMIT_MULT", 1))
        try:
            multiplier = float(mult)
        except (TypeError, ValueError):
            raise TemplateError(f"{path}: rate_limit_multiplier: expected a number, "
                                f"got {mult!r}") from None
        if multiplier <= 0:
            raise TemplateError(f"{path}: rate_limit_multiplier: must be greater than 0")
        return cls({**variables, **os.environ}, multiplier, env_name)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def render(text: str, env: Environment, *, source: str = "<input>", mock: bool = False
           ) -> str:
    """Substitute both template syntaxes. ``mock=True`` is decK's ``file render`` default
    for ``${{ env }}``: the variable's name instead of its value."""
    out = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if line.lstrip().startswith("#"):
            out.append(line)
            continue
        deck = functools.partial(_deck, env=env, source=source, line=number, mock=mock)
        shell = functools.partial(_shell, env=env, source=source, line=number)
        out.append(_SHELL.sub(shell, _DECK.sub(deck, line)))
    return "".join(out)


def _deck(m: re.Match[str], env: Environment, source: str, line: int, mock: bool) -> str:
    name = m.group(1)
    if not name.startswith("DECK_"):
        raise TemplateError(f"{source}:{line}: environment variables in the state file must "
                            f"be prefixed with 'DECK_', found: '{name}'")
    if mock:
        return name
    value = env.variables.get(name)
    if value is None:
        raise TemplateError(f"{source}:{line}: environment variable '{name}' present in "
                            f"state file but not set")
    env.substituted.append(value)
    return value


def _shell(m: re.Match[str], env: Environment, source: str, line: int) -> str:
    name, default = m.group(1), m.group(2)
    value = env.variables.get(name)
    if value is None or (value == "" and default is not None):
        if default is None:
            raise TemplateError(f"{source}:{line}: variable '{name}' is not set (use "
                                f"${{{name}:-default}} for a default)")
        return default
    env.substituted.append(value)
    return value


def scale_rate_limits(doc: Any, multiplier: float) -> Any:
    """Multiply every rate-limiting plugin's limits (wherever nested) by ``multiplier``."""
    if multiplier == 1:
        return doc
    if isinstance(doc, dict):
        if doc.get("name") == "rate-limiting" and isinstance(doc.get("config"), dict):
            config = doc["config"]
            for key in RATE_LIMIT_FIELDS:
                if isinstance(config.get(key), int | float) and not isinstance(
                        config.get(key), bool):
                    config[key] = max(1, round(config[key] * multiplier))
        for value in doc.values():
            scale_rate_limits(value, multiplier)
    elif isinstance(doc, list):
        for item in doc:
            scale_rate_limits(item, multiplier)
    return doc
