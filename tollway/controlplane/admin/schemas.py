"""Schema endpoints (§5.6 of the Kong reference): `/schemas/{entity}`,
`/schemas/{entity}/validate`, `/schemas/plugins/{name}`, `/schemas/plugins/validate`, plus
`/plugins/enabled` and `/tags`.

Schemas are rendered from the same `Record`s that validate entities, in Kong's shape:
`{"fields": [{"<name>": {"type": ..., "required": ..., "default": ...}}, ...],
"entity_checks": [{"<check>": [fields]}]}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollway.config.entities import ENTITIES
from tollway.config.schema import UNSET, Field, Record, to_kong_fields
from tollway.controlplane.admin import bodies
from tollway.controlplane.admin.entities import paged, tag_rows
from tollway.controlplane.admin.errors import AdminError, KongJSON, schema_violation
from tollway.plugins import registry

if TYPE_CHECKING:
    from tollway.node.supervisor import Supervisor

_ATTRS = ("required", "unique", "auto", "nullable", "uuid", "one_of", "not_one_of", "between",
          "gt", "len_eq", "len_min", "len_max", "starts_with", "match", "not_match",
          "reference")


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def render_field(f: Field) -> dict[str, Any]:
    out: dict[str, Any] = {"type": f.type}
    for attr in _ATTRS:
        value = getattr(f, attr)
        if value is None or value is False:
            continue
        out[attr] = _plain(value)
    if f.default is not UNSET:
        out["default"] = _plain(f.default)
    if f.eq is not UNSET:
        out["eq"] = f.eq
    if f.elements is not None:
        out["elements"] = render_field(f.elements)
    if f.keys is not None:
        out["keys"] = render_field(f.keys)
    if f.values is not None:
        out["values"] = render_field(f.values)
    if f.record is not None:
        out.update(render_record(f.record))
    return out


def render_record(record: Record) -> dict[str, Any]:
    out: dict[str, Any] = {"fields": [{name: render_field(f)} for name, f in
                                      record.fields.items()]}
    checks = [{check.name: list(check.fields)} for check in record.entity_checks]
    if checks:
        out["entity_checks"] = checks
    return out


def plugin_schema(name: str) -> dict[str, Any] | None:
    plugin = registry.get(name)
    if plugin is None:
        return None
    base = ENTITIES["plugins"].schema
    fields: list[dict[str, Any]] = []
    for fname in ("consumer", "route", "service", "protocols"):
        f = base.fields[fname]
        rendered = render_field(f)
        if fname != "protocols" and getattr(plugin, f"no_{fname}", False):
            rendered = {"type": "foreign", "reference": f.reference, "eq": None}
        if fname == "protocols" and getattr(plugin, "protocols", None):
            rendered["default"] = list(plugin.protocols)
        fields.append({fname: rendered})
    config = render_record(plugin.config_schema)
    fields.append({"config": {"type": "record", "required": True, **config}})
    return {"fields": fields}


def routes(node: Supervisor) -> list[Route]:
    del node  # schemas do not depend on the running config

    async def entity_schema(request: Request) -> Response:
        name = request.path_params["entity"]
        spec = ENTITIES.get(name)
        if spec is None:
            raise AdminError(404, f"No entity named '{name}'")
        return KongJSON(render_record(spec.schema))

    async def validate_entity(request: Request) -> Response:
        name = request.path_params["entity"]
        spec = ENTITIES.get(name)
        if spec is None:
            raise AdminError(404, f"No entity named '{name}'")
        data = await bodies.read(request, name)
        # foreign keys are checked for shape only (the referenced entity need not exist);
        # auto fields (credential keys) would be generated, so they are not required here
        for fname in spec.auto:
            data.setdefault(fname, "generated")
        out, errors = spec.validate(data)
        if not errors and spec.link_check is not None:
            errors.update(spec.link_check(out))
        if errors:
            raise schema_violation(to_kong_fields(errors))
        return KongJSON({"message": "schema validation successful"})

    async def plugin(request: Request) -> Response:
        name = request.path_params["name"]
        schema = plugin_schema(name)
        if schema is None:
            raise AdminError(404, f"No plugin named '{name}'")
        return KongJSON(schema)

    async def validate_plugin(request: Request) -> Response:
        data = await bodies.read(request, "plugins")
        spec = ENTITIES["plugins"]
        out, errors = spec.validate(data)
        if not errors and spec.link_check is not None:
            errors.update(spec.link_check(out))
        if errors:
            raise schema_violation(to_kong_fields(errors))
        return KongJSON({"message": "schema validation successful"})

    async def enabled(request: Request) -> Response:
        return KongJSON({"enabled_plugins": registry.names()})

    return [
        Route("/schemas/plugins/validate", validate_plugin, methods=["POST"]),
        Route("/schemas/plugins/{name}", plugin, methods=["GET"]),
        Route("/schemas/{entity}/validate", validate_entity, methods=["POST"]),
        Route("/schemas/{entity}", entity_schema, methods=["GET"]),
        Route("/plugins/enabled", enabled, methods=["GET"]),
    ]


def tag_routes(node: Supervisor) -> list[Route]:
    def render(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k != "_key"}

    async def all_tags(request: Request) -> Response:
        return paged(request, tag_rows(node.config.entities), "/tags", render, "_key")

    async def one_tag(request: Request) -> Response:
        tag = request.path_params["tag"]
        rows = [r for r in tag_rows(node.config.entities) if r["tag"] == tag]
        return paged(request, rows, f"/tags/{tag}", render, "_key")

    return [Route("/tags", all_tags, methods=["GET"]),
            Route("/tags/{tag}", one_tag, methods=["GET"])]
