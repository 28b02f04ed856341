"""`GET /status/circuit-breaker` and `POST /status/circuit-breaker/{service}`: the node's
circuit breakers (the circuit-breaker plugin), read from the node table the workers share
(`<prefix>/shm/circuit-breaker.bin`) — the supervisor asks no worker — and forced by hand.

A forced state shows in the listing (`mode`), in the log, and in
`gateway_circuit_breaker_state` at the next scrape (the workers read the table when scraped).
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollway.controlplane.admin.errors import AdminError, KongJSON, schema_violation
from tollway.plugins.circuit_breaker import breaker
from tollway.plugins.circuit_breaker.handler import open_table

if TYPE_CHECKING:
    from tollway.node.supervisor import Supervisor

log = logging.getLogger("tollway.admin")
MODES = {"open": breaker.FORCED_OPEN, "closed": breaker.FORCED_CLOSED, "auto": breaker.AUTO}


def routes(node: Supervisor) -> list[Route]:
    state: dict[str, Any] = {}

    def table() -> Any:
        return open_table(state, node.settings.prefix)

    async def listing(request: Request) -> Response:
        now = time.time()
        data = [breaker.describe(name, breaker.Record.unpack(payload), now)
                for name, payload in sorted(table().items())]
        return KongJSON({"data": data})

    async def force(request: Request) -> Response:
        name = request.path_params["service"]
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            raise AdminError(400, "Cannot parse JSON body") from None
        if not isinstance(body, dict):
            raise schema_violation({"@entity": ["expected an object"]})
        wanted = body.get("state")
        if wanted is None:
            raise schema_violation({"state": "required field missing"})
        if wanted not in MODES:
            raise schema_violation({"state": "expected one of: open, closed, auto"})
        t = table()
        now = time.time()
        with t.locked():
            off = t.find(name)
            if off is None:
                raise AdminError(404, f"no circuit breaker for '{name}': no circuit-breaker "
                                      "plugin applies to it")
            rec = breaker.Record.unpack(t.read(off))
            breaker.force(rec, MODES[wanted], now)
            t.write(off, rec.pack())
        log.warning("circuit breaker %s: forced %s by the Admin API (now %s)", name, wanted,
                    breaker.STATE_NAMES[rec.state])
        return KongJSON(breaker.describe(name, rec, now))

    return [Route("/status/circuit-breaker", listing, methods=["GET"]),
            Route("/status/circuit-breaker/{service}", force, methods=["POST"])]
