"""Kong's `name:value` pairs and the `$(...)` templates request-transformer values may hold.

Kong renders values as Penlight templates in a sandbox: `$(headers.x)`, `$(query_params.y)`,
`$(uri_captures.z)`, `$(shared.k)`, with any Lua expression inside. tollway supports the
lookups people write in practice, compiled once per config:

    $(headers.x_api_key)  $(headers["x-api-key"])  $(query_params.page)  $(uri_captures[1])
    $(uri_captures.id)    $(shared.k)              $(headers.x or "default")

A missing value renders as Lua's `tostring(nil)`, i.e. `nil`; `true` (a valueless query
argument) as `true`; a multi-valued header or argument as its first value. Any other
expression is refused when the config is validated.
"""

from __future__ import annotations

import re
from typing import Any

NAMESPACES = ("headers", "query_params", "uri_captures", "shared")

# name ( .ident | ["str"] | ['str'] | [int] ) ( or "lit" | or 'lit' )?
_EXPR = re.compile(
    r"""^\s*(?P<ns>headers|query_params|uri_captures|shared)\s*
        (?:\.(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
          |\[\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<num>\d+))\s*\])
        (?:\s+or\s+(?:"(?P<odq>[^"]*)"|'(?P<osq>[^']*)'))?\s*$""",
    re.X,
)

# A compiled template: literal strings and (namespace, key, default) lookups.
Part = str | tuple[str, str | int, str | None]


def split_pair(entry: str) -> tuple[str, str]:
    """Kong's `^([^:]+):*(.-)$`: the name before the first colon; the value after any run of
    colons (empty when there is none)."""
    name, _, value = entry.partition(":")
    return name, value.lstrip(":")


def _scan(source: str) -> list[tuple[str, bool]]:
    """Split `source` into (text, is_expression) pieces; `$(` ... balanced `)`."""
    out: list[tuple[str, bool]] = []
    i = 0
    n = len(source)
    while i < n:
        j = source.find("$(", i)
        if j < 0:
            out.append((source[i:], False))
            break
        if j > i:
            out.append((source[i:j], False))
        depth = 1
        k = j + 2
        while k < n and depth:
            c = source[k]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            k += 1
        if depth:
            raise ValueError(f"unbalanced parentheses in '{source[j:]}'")
        out.append((source[j + 2:k - 1], True))
        i = k
    return out


def compile_template(source: str) -> list[Part] | str:
    """The plain string when `source` has no `$(`, else its compiled parts. Raises
    ValueError for an expression tollway does not evaluate."""
    if "$(" not in source:
        return source
    parts: list[Part] = []
    for text, is_expr in _scan(source):
        if not is_expr:
            parts.append(text)
            continue
        m = _EXPR.match(text)
        if m is None:
            raise ValueError(f"unsupported template expression '{text}'")
        key: str | int
        if m["ident"] is not None:
            key = m["ident"]
        elif m["num"] is not None:
            key = int(m["num"])
        else:
            key = m["dq"] if m["dq"] is not None else m["sq"]
        default = m["odq"] if m["odq"] is not None else m["osq"]
        parts.append((m["ns"], key, default))
    return parts


def template_error(value: str) -> str | None:
    """Kong's schema message for a value that does not compile."""
    try:
        compile_template(value)
    except ValueError as e:
        return f"value '{value}' is not in supported format, error:{e}"
    return None


def _lookup(req: Any, env: dict[str, Any], ns: str, key: str | int) -> Any:
    if ns == "headers":
        values = req.get_headers(str(key).replace("_", "-"))
        return values[0] if values else None
    if ns == "query_params":
        q = env.get("query")
        if q is None:
            q = env["query"] = req.query()
        vals = q.get(str(key))
        return vals[0] if vals else None
    if ns == "uri_captures":
        m = req.match
        caps = m.captures if m is not None else None
        if not caps:
            return None
        return caps.get(key) if not isinstance(key, str) or not key.isdigit() else \
            caps.get(int(key))
    shared = req.ctx.get("shared")
    return shared.get(key) if isinstance(shared, dict) else None


def render(parts: list[Part] | str, req: Any, env: dict[str, Any]) -> str:
    if isinstance(parts, str):
        return parts
    out: list[str] = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
            continue
        ns, key, default = p
        v = _lookup(req, env, ns, key)
        if v is None:
            out.append(default if default is not None else "nil")
        elif v is True:
            out.append("true")
        else:
            out.append(str(v))
    return "".join(out)
