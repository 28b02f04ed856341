"""`GET /status/canary`: every canary rollout of the node (the canary plugin), read from the
node table the workers share (`<prefix>/shm/canary.bin`) without asking a worker: status
(progressing, holding, complete, rolled_back), weight, step, per-side statistics, and the
rollback's time and reason."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollway.controlplane.admin.errors import KongJSON
from tollway.plugins.canary import state
from tollway.plugins.canary.handler import open_table

if TYPE_CHECKING:
    from tollway.node.supervisor import Supervisor


def routes(node: Supervisor) -> list[Route]:
    handles: dict[str, Any] = {}

    async def listing(request: Request) -> Response:
        now = time.time()
        table = open_table(handles, node.settings.prefix)
        return KongJSON({"data": [state.describe(name, state.Record.unpack(payload), now)
                                  for name, payload in sorted(table.items())]})

    return [Route("/status/canary", listing, methods=["GET"])]
