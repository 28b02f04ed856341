"""The JSONPath subset decK's selectors use (``file patch``, ``add-tags --selector``):

    $                         the document
    .key  ['key']             a member
    ..key                     a member at any depth (recursive descent)
    [*]  .*                   every element / member
    [n]                       an array element (negative counts from the end)
    [?(@.f == 'v')]           elements whose field f equals v (==, !=; string, number,
    [?(@.f)]                  true/false/null), or that have field f
    [?(@.a.b == 'v' && @.c)]  conditions joined with && or ||

``select(doc, path)`` returns the selected nodes (the objects and arrays themselves, so
callers edit them in place).
"""

from __future__ import annotations

import json
import re
from typing import Any


class JSONPathError(ValueError):
    pass


_TOKEN = re.compile(r"""
    (?P<descent>\.\.)
  | (?P<dot>\.)
  | \[\s*\?\(\s*(?P<filter>.*?)\s*\)\s*\]
  | \[\s*(?P<index>-?\d+)\s*\]
  | \[\s*(?P<star>\*)\s*\]
  | \[\s*(?P<quoted>'[^']*'|"[^"]*")\s*\]
  | (?P<name>[A-Za-z_$][\w$-]*|\*)
""", re.VERBOSE)


def _parse(path: str) -> list[tuple[str, Any]]:
    text = path.strip()
    if not text.startswith("$"):
        raise JSONPathError(f"selector {path!r}: must start with '$'")
    pos, steps, descent = 1, [], False
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise JSONPathError(f"selector {path!r}: cannot parse at {text[pos:]!r}")
        pos = m.end()
        if m.group("descent"):
            descent = True
            continue
        if m.group("dot"):
            continue
        if m.group("filter") is not None:
            step: tuple[str, Any] = ("filter", _parse_filter(m.group("filter"), path))
        elif m.group("index") is not None:
            step = ("index", int(m.group("index")))
        elif m.group("star") or m.group("name") == "*":
            step = ("star", None)
        elif m.group("quoted") is not None:
            step = ("name", m.group("quoted")[1:-1])
        else:
            step = ("name", m.group("name"))
        steps.append(("descent", step) if descent else step)
        descent = False
    return steps


_COND = re.compile(r"""^@((?:\.[\w-]+)+)\s*(?:(==|!=)\s*(.+))?$""")


def _parse_filter(expr: str, path: str) -> Any:
    ors = []
    for alt in re.split(r"\s*\|\|\s*", expr):
        ands = []
        for cond in re.split(r"\s*&&\s*", alt):
            m = _COND.match(cond.strip())
            if not m:
                raise JSONPathError(f"selector {path!r}: unsupported filter {cond!r}")
            fields = m.group(1).strip(".").split(".")
            value: Any = None
            if m.group(2):
                raw = m.group(3).strip()
                if raw[:1] == "'" and raw[-1:] == "'":
                    value = raw[1:-1]
                else:
                    try:
                        value = json.loads(raw)
                    except ValueError:
                        raise JSONPathError(f"selector {path!r}: bad value {raw!r}") from None
            ands.append((fields, m.group(2), value))
        ors.append(ands)
    return ors


_ABSENT = object()


def _field(node: Any, fields: list[str]) -> Any:
    for f in fields:
        if not isinstance(node, dict) or f not in node:
            return _ABSENT
        node = node[f]
    return node


def _matches(node: Any, ors: Any) -> bool:
    for ands in ors:
        ok = True
        for fields, op, value in ands:
            got = _field(node, fields)
            if op is None:
                ok = got is not _ABSENT
            elif op == "==":
                ok = got is not _ABSENT and got == value
            else:
                ok = got != value
            if not ok:
                break
        if ok:
            return True
    return False


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node.values())
    if isinstance(node, list):
        return list(node)
    return []


def _apply(node: Any, step: tuple[str, Any]) -> list[Any]:
    kind, arg = step
    if kind == "name":
        return [node[arg]] if isinstance(node, dict) and arg in node else []
    if kind == "star":
        return _children(node)
    if kind == "index":
        if isinstance(node, list) and -len(node) <= arg < len(node):
            return [node[arg]]
        return []
    if kind == "filter":
        items = node if isinstance(node, list) else [node] if isinstance(node, dict) else []
        return [i for i in items if isinstance(i, dict) and _matches(i, arg)]
    raise AssertionError(kind)


def _descend(node: Any) -> list[Any]:
    out = [node]
    for child in _children(node):
        out.extend(_descend(child))
    return out


def select(doc: Any, path: str) -> list[Any]:
    nodes = [doc]
    for step in _parse(path):
        nxt: list[Any] = []
        if step[0] == "descent":
            inner = step[1]
            for n in nodes:
                for d in _descend(n):
                    # a filter under descent applies to arrays' elements only once
                    if inner[0] == "filter" and not isinstance(d, list):
                        continue
                    nxt.extend(_apply(d, inner))
        else:
            for n in nodes:
                nxt.extend(_apply(n, step))
        # the same object reached twice (descent) is selected once
        seen: set[int] = set()
        nodes = [n for n in nxt if not (id(n) in seen or seen.add(id(n)))]  # type: ignore[func-returns-value]
    return nodes
