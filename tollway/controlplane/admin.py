"""The admin listener (Kong's Admin API, first endpoints): `/`, `/status`, `/config`,
`/metrics` (Prometheus text, aggregated over the workers).

Starlette on uvicorn, in the supervisor process: never on the proxy path. Error bodies follow
Kong's Admin API (§5.5, §5.7 of the reference): `{"message": …}` or the coded form
`{"code", "name", "message", "fields"}`; admin responses carry no request_id.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tollway import __version__, metrics
from tollway.config.declarative import validate
from tollway.config.errors import ConfigError
from tollway.config.loader import load_text
from tollway.config.model import Config
from tollway.plugins import registry

if TYPE_CHECKING:
    from tollway.node.supervisor import Supervisor

JSON_TYPE = "application/json; charset=utf-8"
NODE_ID = None


class KongJSON(JSONResponse):
    media_type = JSON_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def _message(status: int, message: str) -> KongJSON:
    return KongJSON({"message": message}, status_code=status)


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


def create_status_app(node: Supervisor) -> Starlette:
    """The `status_listen` listener: read-only health for load balancers and probes, and
    the Prometheus scrape endpoint."""
    admin = create_admin_app(node)
    routes = [r for r in admin.routes if getattr(r, "path", "").startswith("/status")
              or getattr(r, "path", "") == "/metrics"]
    return Starlette(routes=routes, exception_handlers=admin.exception_handlers)


def create_admin_app(node: Supervisor) -> Starlette:
    hostname = socket.gethostname()
    node_id = os.environ.get("TOLLWAY_NODE_ID") or _node_id(node)

    async def root(request: Request) -> Response:
        settings = node.settings
        return KongJSON({
            "version": __version__,
            "tagline": "Welcome to tollway",
            "hostname": hostname,
            "node_id": node_id,
            "timers": {"running": 0, "pending": 0},
            "plugins": {
                "available_on_server": {n: {"version": getattr(registry.get(n), "version", "")}
                                        for n in registry.names()},
                "enabled_in_cluster": sorted({p["name"] for p in
                                              node.config.entities.get("plugins", [])}),
            },
            "configuration": settings.public(),
            "pids": {"master": os.getpid(),
                     "workers": [w["pid"] for w in node.worker_info()]},
        })

    async def status(request: Request) -> Response:
        body: dict[str, Any] = {
            "memory": {"workers_lua_vms": [
                {"http_allocated_gc": _rss_mib(w["pid"]), "pid": w["pid"]}
                for w in node.worker_info()]},
            "server": node.server_stats(),
            "configuration_hash": node.config.hash,
            "configuration_revision": node.revision,
            "workers": node.worker_info(),
            "uptime_seconds": int(time.time() - node.started_at),
            "worker_restarts": node.restarts,
        }
        if node.store is not None:  # Kong omits `database` in DB-less mode
            body["database"] = {"reachable": True}
        return KongJSON(body)

    async def ready(request: Request) -> Response:
        workers = node.worker_info()
        alive = [w for w in workers if w["alive"]]
        if node.stopping:
            return _message(503, "tollway is shutting down")
        if not alive or len(alive) < len(workers):
            return _message(503, f"{len(alive)} of {len(workers)} workers are ready")
        return _message(200, "ready")

    async def get_config(request: Request) -> Response:
        text = yaml.safe_dump(node.config.to_declarative(), sort_keys=False)
        return KongJSON({"config": text, "configuration_hash": node.config.hash,
                         "revision": node.revision})

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
        # Kong: check_hash only applies to a config sent as text, not a decoded document.
        if check_hash and as_text and config.hash == node.config.hash:
            return Response(status_code=304)
        from tollway.node.supervisor import ApplyError

        try:
            await node.apply(config, author=request.headers.get("x-tollway-author"),
                             message=query.get("message"))
        except ApplyError as exc:
            return KongJSON({"code": 14, "name": "invalid declarative configuration",
                             "message": str(exc), "fields": {"error": str(exc)}},
                            status_code=400)
        return KongJSON(flattened_entities(config), status_code=201)

    async def scrape(request: Request) -> Response:
        # Kong serves /metrics from the prometheus plugin's API: gone with the plugin.
        if registry.get("prometheus") is None:
            return _message(404, "Not found")
        text = metrics.render(await node.collect_metrics())
        return Response(text, media_type=None, headers={"Content-Type": metrics.CONTENT_TYPE})

    async def not_found(request: Request, exc: Exception) -> Response:
        return _message(404, "Not found")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _message(405, "Method not allowed")

    return Starlette(
        routes=[
            Route("/", root, methods=["GET"]),
            Route("/status", status, methods=["GET"]),
            Route("/status/ready", ready, methods=["GET"]),
            Route("/metrics", scrape, methods=["GET"]),
            Route("/config", get_config, methods=["GET"]),
            Route("/config", post_config, methods=["POST"]),
        ],
        exception_handlers={404: not_found, 405: not_allowed},
    )


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


def _rss_mib(pid: int) -> str:
    """A worker's resident memory, formatted as Kong formats its memory figures."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return f"{int(line.split()[1]) / 1024:.2f} MiB"
    except OSError:
        pass
    return "0.00 MiB"


def _node_id(node: Supervisor) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{socket.gethostname()}:{node.settings.prefix}"))
