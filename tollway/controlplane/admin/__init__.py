"""The admin listener: Kong's Admin API (§5 of the Kong reference) on Starlette/uvicorn, in
the supervisor process — never on the proxy path.

Route modules: `node` (`/`, `/status`, `/status/ready`, `/metrics`), `config` (`/config`),
`entities` (generic CRUD, nested and n-1 endpoints), `schemas` (`/schemas/...`,
`/plugins/enabled`, `/tags`), `openapi` (`/openapi.json`). `auth` puts the admin-token
check in front of all of them; `errors` renders Kong's error bodies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tollway.controlplane.admin import auth, cluster, config, entities, node, openapi, schemas
from tollway.controlplane.admin.errors import (
    AdminError,
    KongJSON,
    database_unavailable,
    precondition_failed,
)
from tollway.controlplane.admin.errors import message as _message

if TYPE_CHECKING:
    from tollway.node.supervisor import Supervisor

__all__ = ["create_admin_app", "create_status_app"]


def _optional_routes(module: str, node_: Supervisor) -> list[BaseRoute]:
    """Routes of an admin module that may not exist in this tree yet."""
    try:
        mod = importlib.import_module(f"tollway.controlplane.admin.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"tollway.controlplane.admin.{module}":
            raise
        return []
    return list(mod.routes(node_))


async def _admin_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AdminError)
    if exc.status == 415:
        return Response(status_code=415)  # Kong answers an unsupported body with no body
    return exc.response()


async def _not_found(request: Request, exc: Exception) -> Response:
    return _message(404, "Not found")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return _message(405, "Method not allowed")


async def _crash(request: Request, exc: Exception) -> Response:
    return _message(500, "An unexpected error occurred")


async def _precondition(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, entities.Precondition)
    return precondition_failed(exc.exc)


async def _database_down(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, entities.DatabaseDown)
    return database_unavailable(exc.node, exc.exc)


HANDLERS = {AdminError: _admin_error, entities.Precondition: _precondition,
            entities.DatabaseDown: _database_down, 404: _not_found, 405: _not_allowed,
            500: _crash}


def admin_routes(node_: Supervisor) -> list[BaseRoute]:
    routes: list[BaseRoute] = [*node.routes(node_), *config.routes(node_),
                               *schemas.routes(node_), *schemas.tag_routes(node_)]
    # HOOK(revisions): the revisioned store's endpoints (`/revisions`, history, rollback)
    # live in tollway/controlplane/admin/revisions.py, which exposes
    # `routes(node) -> list[Route]`; they are mounted here as soon as that module exists.
    routes += _optional_routes("revisions", node_)
    routes += _optional_routes("circuit_breaker", node_)
    routes += _optional_routes("canary", node_)
    routes += _optional_routes("upstreams_health", node_)
    routes += cluster.routes(node_)
    routes += entities.routes(node_)  # last: its `/{collection}/{key}` patterns are broad
    return routes


def create_admin_app(node_: Supervisor) -> Starlette:
    routes = admin_routes(node_)

    async def openapi_json(request: Request) -> Response:
        return KongJSON(openapi.document([r for r in app.routes if isinstance(r, Route)]))

    routes.insert(0, Route("/openapi.json", openapi_json, methods=["GET"]))
    tokens = auth.load_tokens(node_.settings)
    app = Starlette(routes=routes, exception_handlers=HANDLERS,
                    middleware=[Middleware(auth.TokenMiddleware, tokens=tokens)])
    return app


def create_status_app(node_: Supervisor) -> Starlette:
    """The `status_listen` listener: read-only health for load balancers and probes, and
    the Prometheus scrape endpoint. No token: it exposes nothing that changes the node."""
    return Starlette(routes=list(node.routes(node_)[1:]),
                     exception_handlers=HANDLERS)
