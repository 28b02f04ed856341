"""`GET /config` and `POST /config` (Kong's DB-less endpoint, §5.7 of the Kong reference).

Served in every database mode: with a store, a `POST /config` is one new revision like any
other write (DECISIONS.md #5)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import yaml
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollway.config.declarative import validate
from tollway.config.errors import ConfigError
from tollway.config.loader import load_text
from tollway.config.model import Config
from tollway.controlplane.admin.entities import author_of, node_state
from tollway.controlplane.admin.errors import (
    KongJSON,
    database_unavailable,
    precondition_failed,
)
from tollway.controlplane.admin.errors import message as _message
from tollway.controlplane.store import PreconditionFailed, StoreError, etag

if TYPE_CHECKING:
    from tollway.node.supervisor import Supervisor


def invalid_config(exc: ConfigError, flatten: bool) -> KongJSON:
    body: dict[str, Any] = {
        "code": 14,
        "name": "invalid declarative configuration",
        "message": str(exc),
        "fields": exc.fields,
    }
    if flatten:
        body["flattened_errors"] = exc.flattened
    return KongJSON(body, status_code=400)


def flattened_entities(config: Config) -> dict[str, dict[str, Any]]:
    """Kong's 201 body for POST /config: `{entity: {id: entity}}`."""
    return {name: {e["id"]: e for e in rows} for name, rows in config.entities.items() if rows}


def routes(node: Supervisor) -> list[Route]:
    async def get_config(request: Request) -> Response:
        text = yaml.safe_dump(node.config.to_declarative(), sort_keys=False)
        return KongJSON({"config": text, "configuration_hash": node.config.hash,
                         "revision": node.revision}, headers={"ETag": etag(node.config.hash)})

    async def post_config(request: Request) -> Response:
        query = request.query_params
        flatten = query.get("flatten_errors") in ("1", "true")
        check_hash = query.get("check_hash") in ("1", "true")
        raw = await request.body()
        if not raw.strip():
            return _message(400, "expected a declarative configuration")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            config, as_text = _parse_config_body(raw, ctype)
        except ConfigError as exc:
            return invalid_config(exc, flatten)
        except _BadBody as exc:
            return _message(400, str(exc))
        from tollway.node.supervisor import ApplyError

        state = node_state(node)
        async with state.lock:
            # Kong: check_hash only applies to a config sent as text, not a decoded document.
            if check_hash and as_text and config.hash == node.config.hash:
                return Response(status_code=304)
            try:
                await node.apply(config, author=author_of(request),
                                 message=query.get("message"),
                                 if_match=request.headers.get("if-match"))
            except PreconditionFailed as exc:
                return precondition_failed(exc)
            except StoreError as exc:
                return database_unavailable(node, exc)
            except ApplyError as exc:
                return KongJSON({"code": 14, "name": "invalid declarative configuration",
                                 "message": str(exc), "fields": {"error": str(exc)}},
                                status_code=400)
        return KongJSON(flattened_entities(config), status_code=201)

    return [
        Route("/config", get_config, methods=["GET"]),
        Route("/config", post_config, methods=["POST"]),
    ]


class _BadBody(ValueError):
    pass


def _parse_config_body(raw: bytes, ctype: str) -> tuple[Config, bool]:
    """The body forms Kong's POST /config takes (§5.7): the document itself as JSON,
    `{"config": "<yaml or json text>"}`, a form field `config`, or raw YAML/JSON text."""
    if ctype == "application/x-www-form-urlencoded":
        values = parse_qs(raw.decode("utf-8", "replace")).get("config")
        if not values:
            raise _BadBody("expected a declarative configuration")
        return load_text(values[0]), True
    if ctype == "multipart/form-data":
        raise _BadBody("multipart bodies are not supported; send JSON or YAML")
    try:
        doc = json.loads(raw)
    except ValueError:
        return load_text(raw.decode("utf-8", "replace"), "config.yaml"), True
    if isinstance(doc, dict) and "_format_version" not in doc and isinstance(
            doc.get("config"), str):
        return load_text(doc["config"]), True
    if ctype in ("text/yaml", "application/yaml", "text/plain", "application/x-yaml"):
        return validate(doc), True  # raw JSON text sent as a text body
    return validate(doc), False
