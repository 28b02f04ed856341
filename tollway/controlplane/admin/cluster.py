"""`GET /cluster/nodes`: every node sharing this node's database, from the heartbeat table
(`tollway.controlplane.store.cluster`) — when each was last seen and which revision and hash
it serves, so drift between nodes shows. DB-less nodes answer 400 (there is no cluster).

    {"data": [{"id", "hostname", "started_at", "last_seen", "last_seen_seconds_ago",
               "alive", "revision", "configuration_hash", "in_sync"}...],
     "latest": {"revision", "configuration_hash"}, "next": null}

`alive`: seen within STALE_SECONDS; `in_sync`: serving the latest revision's hash.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tollway.controlplane.admin.errors import KongJSON, database_unavailable, message
from tollway.controlplane.store import StoreError
from tollway.controlplane.store import cluster as cluster_store

if TYPE_CHECKING:
    from tollway.node.supervisor import Supervisor

STALE_SECONDS = 10.0  # ten missed heartbeats
NO_DATABASE = ("cluster nodes need a database: this node runs with database=off (DB-less) "
               "and shares its config with no other node")


def routes(node: Supervisor) -> list[BaseRoute]:
    async def nodes(request: Request) -> Response:
        store = node.store
        if store is None:
            return message(400, NO_DATABASE)
        try:
            rows = await asyncio.to_thread(cluster_store.nodes, store.engine)
            head = await asyncio.to_thread(store.head)
        except StoreError as exc:
            node.database_down(exc)
            return database_unavailable(node, exc)
        now = time.time()
        data = []
        for r in rows:
            ago = max(0.0, now - float(r["last_seen"]))
            data.append({
                "id": r["node_id"], "hostname": r["hostname"],
                "started_at": int(r["started_at"]), "last_seen": int(r["last_seen"]),
                "last_seen_seconds_ago": round(ago, 1), "alive": ago <= STALE_SECONDS,
                "revision": r["applied_revision"], "configuration_hash": r["applied_hash"],
                "in_sync": r["applied_hash"] == head[1],
            })
        return KongJSON({"data": data, "next": None,
                         "latest": {"revision": head[0], "configuration_hash": head[1]}})

    return [Route("/cluster/nodes", nodes, methods=["GET"])]
