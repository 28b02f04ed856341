"""The Admin API's OpenAPI 3.0 document, served at `/openapi.json`.

Paths and methods come from the assembled app's routes; request bodies from the entity
schemas that validate them (`tollway.config.entities`), so the document cannot drift from
what is served. Every operation needs a summary in `SUMMARIES`:
`tests/unit/admin_api/test_admin_openapi.py` fails when a route has none, which is how a
new endpoint is kept documented.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Route

from tollway import __version__
from tollway.config.entities import ENTITIES
from tollway.config.schema import Field, Record
from tollway.controlplane.admin.entities import COLLECTIONS, NESTED, PARENTS

# (path pattern with {params} renamed to {}, method) -> summary
_FIXED: dict[tuple[str, str], str] = {
    ("/", "GET"): "Node information",
    ("/status", "GET"): "Node status and configuration hash",
    ("/status/ready", "GET"): "Readiness: 200 when every worker serves, else 503",
    ("/metrics", "GET"): "Prometheus metrics (prometheus plugin)",
    ("/config", "GET"): "The running configuration as declarative YAML",
    ("/config", "POST"): "Replace the whole configuration (Kong's DB-less endpoint)",
    ("/openapi.json", "GET"): "This document",
    ("/tags", "GET"): "Every tag with the entity carrying it",
    ("/tags/{}", "GET"): "The entities carrying one tag",
    ("/plugins/enabled", "GET"): "Plugins enabled on this node",
    ("/schemas/{}", "GET"): "An entity's schema",
    ("/schemas/{}/validate", "POST"): "Validate an entity without storing it",
    ("/schemas/plugins/{}", "GET"): "A plugin's schema",
    ("/schemas/plugins/validate", "POST"): "Validate a plugin entity without storing it",
    ("/upstreams/{}/targets/all", "GET"): "Every target of an upstream",
    # revisions.py (the revisioned store's endpoints)
    ("/config/revisions", "GET"): "Configuration revisions, newest first",
    ("/config/revisions/{}", "GET"): "One revision: metadata and declarative document",
    ("/config/revisions/{}/diff/{}", "GET"): "What changes from one revision to another",
    ("/config/rollback", "POST"): "Make an earlier revision current (a new revision)",
    # cluster.py
    ("/cluster/nodes", "GET"): "Nodes sharing this database: last seen, revision served",
    # circuit_breaker.py, canary.py (the circuit-breaker and canary plugins)
    ("/status/circuit-breaker", "GET"): "Circuit breakers: state, counts, since when",
    ("/status/circuit-breaker/{}", "POST"): "Force a circuit breaker open, closed or auto",
    ("/status/canary", "GET"): "Canary rollouts: step, weight, statistics, rollback",
}
_VERBS = {"GET": "Get", "PUT": "Create or replace", "PATCH": "Update", "DELETE": "Delete"}


def summaries() -> dict[tuple[str, str], str]:
    out = dict(_FIXED)
    for name in COLLECTIONS:
        out[(f"/{name}", "GET")] = f"List {name}"
        out[(f"/{name}", "POST")] = f"Create one of {name}"
        for method, verb in _VERBS.items():
            out[(f"/{name}/{{}}", method)] = f"{verb} one of {name} (by id or name)"
    for parent, segment, _child, _fk in NESTED:
        out[(f"/{parent}/{{}}/{segment}", "GET")] = f"List the {segment} of one of {parent}"
        out[(f"/{parent}/{{}}/{segment}", "POST")] = f"Create {segment} under one of {parent}"
        for method, verb in _VERBS.items():
            out[(f"/{parent}/{{}}/{segment}/{{}}", method)] = (
                f"{verb} one of the {segment} of one of {parent}")
    for child, fk in PARENTS:
        for method, verb in _VERBS.items():
            out[(f"/{child}/{{}}/{fk}", method)] = (
                f"{verb} the {fk} of one of {child}" if method != "DELETE"
                else f"Not allowed (405): delete the {fk} itself")
    return out


def pattern(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def json_schema(f: Field) -> dict[str, Any]:
    t = f.type
    out: dict[str, Any]
    if t in ("string", "integer", "number", "boolean"):
        out = {"type": t}
        if f.one_of:
            out["enum"] = list(f.one_of)
    elif t in ("array", "set"):
        out = {"type": "array",
               "items": json_schema(f.elements) if f.elements is not None else {}}
    elif t == "map":
        out = {"type": "object",
               "additionalProperties": json_schema(f.values) if f.values is not None else {}}
    elif t == "record":
        out = record_schema(f.record) if f.record is not None else {"type": "object"}
    elif t == "foreign":
        out = {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}}}
    else:
        out = {}
    if not f.required and out:
        out["nullable"] = True
    return out


def record_schema(record: Record) -> dict[str, Any]:
    return {"type": "object",
            "properties": {name: json_schema(f) for name, f in record.fields.items()}}


_ERROR = {"type": "object", "properties": {
    "message": {"type": "string"}, "code": {"type": "integer"}, "name": {"type": "string"},
    "fields": {}}}


def _entity_for(path: str) -> str | None:
    parts = [p for p in path.split("/") if p and not p.startswith("{")]
    for parent, segment, child, _ in NESTED:
        if parts[-2:] == [parent, segment] or (len(parts) >= 2 and parts[:2] == [parent,
                                                                               segment]):
            return child
    for child, fk in PARENTS:
        if parts == [child, fk]:
            return ENTITIES[COLLECTIONS[child]].foreign_fields[fk]
    if parts and parts[0] in COLLECTIONS and len(parts) == 1:
        return COLLECTIONS[parts[0]]
    return None


def document(routes: list[Route]) -> dict[str, Any]:
    known = summaries()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        methods = sorted(m for m in (route.methods or ()) if m != "HEAD")
        # Starlette's `{n:int}` convertors: `{n}` in the document, typed parameters
        params = [p.partition(":") for p in re.findall(r"\{([^}]+)\}", route.path)]
        path = re.sub(r"\{([^}:]+):[^}]+\}", r"{\1}", route.path)
        entity = _entity_for(path)
        for method in methods:
            op: dict[str, Any] = {
                # a route of another module (revisions) documents itself by its docstring
                "summary": known.get((pattern(path), method))
                or (route.endpoint.__doc__ or "").strip().split("\n")[0],
                "operationId": f"{method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', route.path)}",
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {
                        "schema": {}}}},
                    "default": {"description": "Kong error body", "content": {
                        "application/json": {"schema": _ERROR}}},
                },
            }
            if params:
                op["parameters"] = [
                    {"name": p, "in": "path", "required": True,
                     "schema": {"type": "integer" if conv == "int" else "string"}}
                    for p, _, conv in params]
            if method == "GET" and path.endswith(tuple(f"/{c}" for c in COLLECTIONS)):
                op.setdefault("parameters", []).extend([
                    {"name": "size", "in": "query", "schema": {"type": "integer"}},
                    {"name": "offset", "in": "query", "schema": {"type": "string"}},
                    {"name": "tags", "in": "query", "schema": {"type": "string"}},
                ])
            if method in ("POST", "PUT", "PATCH"):
                body = (record_schema(ENTITIES[entity].schema) if entity in ENTITIES
                        else {"type": "object"})
                op["requestBody"] = {"content": {"application/json": {"schema": body}}}
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "tollway Admin API (Kong-compatible)", "version": __version__},
        "paths": paths,
    }
