"""decK's diff/sync output: ``creating|updating|deleting <kind> <name>``, field-level
``-``/``+`` lines for what changed, ``Summary:``; or the ``--json-output`` document.

Masking: secret fields (credential keys, private keys, passwords in plugin configs) and any
value substituted from the environment into the file print as ``[masked]``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from tollway.reconcile.diff import Event, Plan
from tollway.reconcile.state import SECRET_CONFIG_KEYS, SECRET_FIELDS, Entry

MASK = "[masked]"
GREEN, YELLOW, RED, RESET = "\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[0m"
VERBS = {"create": "creating", "update": "updating", "delete": "deleting"}
COLOURS = {"create": GREEN, "update": YELLOW, "delete": RED}


class Masker:
    def __init__(self, values: Iterable[str] = ()) -> None:
        # longest first, so a value containing another is masked whole
        self.values = sorted({v for v in values if v and len(v) >= 3}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.values:
            value = value.replace(secret, MASK)
        return value

    def view(self, entry: Entry) -> dict[str, Any]:
        """The entry's view with secrets masked."""
        def walk(value: Any, key: str | None) -> Any:
            if isinstance(value, dict):
                return {k: walk(v, k) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v, None) for v in value]
            if key in SECRET_CONFIG_KEYS and value is not None:
                return MASK
            if isinstance(value, str):
                return self.text(value)
            return value

        view = walk(entry.view, None)
        for name in SECRET_FIELDS.get(entry.entity, ()):
            if view.get(name) is not None:
                view[name] = MASK
        return dict(view)


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def field_diff(old: dict[str, Any], new: dict[str, Any], indent: int = 1) -> list[str]:
    """Lines for the fields that differ, nested records opened with their key as context."""
    lines: list[str] = []
    pad = "  " * indent
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            lines.append(f" {pad}{json.dumps(key)}: {{")
            lines.extend(field_diff(a, b, indent + 1))
            lines.append(f" {pad}}},")
            continue
        if a is not _MISSING:
            lines.append(f"-{pad}{json.dumps(key)}: {_dump(a)},")
        if b is not _MISSING:
            lines.append(f"+{pad}{json.dumps(key)}: {_dump(b)},")
    return lines


_MISSING: Any = object()


def render_text(plan: Plan, masker: Masker, colour: bool,
                echo: Callable[[str], None]) -> None:
    def paint(line: str, code: str) -> str:
        return f"{code}{line}{RESET}" if colour else line

    for event in plan.events:
        head = f"{VERBS[event.op]} {event.kind} {masker.text(event.name)}"
        if event.op != "update" or event.old is None:
            echo(paint(head, COLOURS[event.op]))
            continue
        echo(paint(head + " {", COLOURS[event.op]))
        for line in field_diff(masker.view(event.old), masker.view(event.entry)):
            code = RED if line.startswith("-") else GREEN if line.startswith("+") else ""
            echo(paint(line, code) if code else line)
        echo(" }")
    echo("Summary:")
    echo(f"  Created: {plan.count('create')}")
    echo(f"  Updated: {plan.count('update')}")
    echo(f"  Deleted: {plan.count('delete')}")


def _json_event(event: Event, masker: Masker) -> dict[str, Any]:
    body: dict[str, Any] = {"new": masker.view(event.entry)}
    if event.old is not None:
        body["old"] = masker.view(event.old)
    if event.op == "delete":
        body = {"new": None, "old": masker.view(event.entry)}
    return {"name": masker.text(event.name), "kind": event.kind, "body": body}


def render_json(plan: Plan | None, masker: Masker, errors: list[str] | None = None
                ) -> dict[str, Any]:
    """decK's ``--json-output`` shape."""
    changes: dict[str, list[dict[str, Any]]] = {"creating": [], "updating": [], "deleting": []}
    if plan is not None:
        for event in plan.events:
            changes[VERBS[event.op]].append(_json_event(event, masker))
    summary = {k: len(v) for k, v in changes.items()}
    summary["total"] = sum(summary.values())
    return {"changes": changes, "summary": summary,
            "warnings": list(plan.warnings) if plan else [], "errors": list(errors or [])}
