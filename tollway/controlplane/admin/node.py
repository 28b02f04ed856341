"""The node's own endpoints: `/` (Kong's node information), `/status`, `/status/ready` and
`/metrics` (Prometheus text, aggregated over the workers)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollway import __version__, metrics
from tollway.controlplane.admin.errors import KongJSON
from tollway.controlplane.admin.errors import message as _message
from tollway.plugins import registry

if TYPE_CHECKING:
    from tollway.node.supervisor import Supervisor

# settings never shown by `GET /` (tokens); passwords are masked by Settings.public()
SECRET_SETTINGS = ("admin_token",)


def routes(node: Supervisor) -> list[Route]:
    """`/`, `/status`, `/status/ready`, `/metrics`."""
    hostname = node.hostname
    node_id = node.node_id

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
            "configuration": _public(settings.public()),
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
            database: dict[str, Any] = {"reachable": node.db_reachable}
            if not node.db_reachable:
                database["error"] = node.db_error
            body["database"] = database
            body["node_id"] = node_id
        return KongJSON(body)

    async def ready(request: Request) -> Response:
        workers = node.worker_info()
        alive = [w for w in workers if w["alive"]]
        if node.stopping:
            return _message(503, "tollway is shutting down")
        if not alive or len(alive) < len(workers):
            return _message(503, f"{len(alive)} of {len(workers)} workers are ready")
        return _message(200, "ready")

    async def scrape(request: Request) -> Response:
        # Kong serves /metrics from the prometheus plugin's API: gone with the plugin.
        if registry.get("prometheus") is None:
            return _message(404, "Not found")
        text = metrics.render(await node.collect_metrics())
        return Response(text, media_type=None, headers={"Content-Type": metrics.CONTENT_TYPE})

    return [
        Route("/", root, methods=["GET"]),
        Route("/status", status, methods=["GET"]),
        Route("/status/ready", ready, methods=["GET"]),
        Route("/metrics", scrape, methods=["GET"]),
    ]


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


def _public(values: dict[str, object]) -> dict[str, object]:
    return {k: ("******" if k in SECRET_SETTINGS and v else v) for k, v in values.items()}
