"""`GET /upstreams/{upstream}/health` (Kong §4.6): each target's health on this node.

Health is kept per worker (tollway/dataplane/upstream/health.py); the node's view comes from
the workers' `gateway_upstream_target_health` gauges merged with `max`, so an address that
any worker holds unhealthy is reported UNHEALTHY, and HEALTHY only once every worker agrees.
Targets and weights come from the node's current config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollway.config.typedefs import is_ip, split_host_port
from tollway.controlplane.admin.errors import KongJSON
from tollway.controlplane.admin.errors import message as _message

if TYPE_CHECKING:
    from tollway.node.supervisor import Supervisor

GAUGE = "gateway_upstream_target_health"


def _find(entities: dict[str, list[dict[str, Any]]], key: str) -> dict[str, Any] | None:
    for up in entities.get("upstreams") or ():
        if up["id"] == key or up["name"] == key:
            return up
    return None


def _states(merged: dict[str, Any], upstream: str) -> dict[str, dict[str, set[str]]]:
    """target -> address -> the states some worker reports (value 1)."""
    out: dict[str, dict[str, set[str]]] = {}
    for labels, value in (merged.get(GAUGE) or {}).get("series", ()):
        up, target, address, state = labels
        if up == upstream:
            states = out.setdefault(target, {}).setdefault(address, set())
            if value:
                states.add(state)
    return out


def _address_health(states: set[str]) -> str:
    for s in ("unhealthy", "dns_error", "healthy", "healthchecks_off"):
        if s in states:
            return s.upper()
    return "HEALTHCHECKS_OFF"


def health_document(entities: dict[str, list[dict[str, Any]]], up: dict[str, Any],
                    merged: dict[str, Any]) -> list[dict[str, Any]]:
    states = _states(merged, up["name"])
    data = []
    for t in entities.get("targets") or ():
        if t["upstream"]["id"] != up["id"]:
            continue
        weight = int(t.get("weight", 100))
        addresses: list[dict[str, Any]] = []
        for address, st in sorted(states.get(t["target"], {}).items()):
            parts = split_host_port(address)
            ip, port = (parts[0].strip("[]"), int(parts[1] or 8000)) if parts else (address, 0)
            addresses.append({"ip": ip, "port": port, "health": _address_health(st),
                              "weight": weight})
        available = sum(a["weight"] for a in addresses if a["health"] != "UNHEALTHY")
        total = weight * len(addresses)
        if addresses:
            healths = {a["health"] for a in addresses}
            health = ("HEALTHCHECKS_OFF" if healths == {"HEALTHCHECKS_OFF"}
                      else "HEALTHY" if available > 0 else "UNHEALTHY")
        else:
            host = (split_host_port(t["target"]) or (t["target"], None))[0]
            health = "HEALTHCHECKS_OFF" if is_ip(host) else "DNS_ERROR"
        data.append({**t, "health": health, "data": {
            "addresses": addresses,
            "weight": {"total": total, "available": available, "unavailable": total - available},
        }})
    return data


def routes(node: Supervisor) -> list[Route]:
    async def upstream_health(request: Request) -> Response:
        """Health of an upstream's targets on this node (?balancer_health=1: the balancer)"""
        entities = node.config.entities
        up = _find(entities, request.path_params["upstream"])
        if up is None:
            return _message(404, "Not found")
        merged = await node.collect_metrics()
        data = health_document(entities, up, merged)
        if request.query_params.get("balancer_health") in ("1", "true"):
            total = sum(d["data"]["weight"]["total"] for d in data)
            available = sum(d["data"]["weight"]["available"] for d in data)
            threshold = float((up.get("healthchecks") or {}).get("threshold") or 0)
            all_off = all(d["health"] == "HEALTHCHECKS_OFF" for d in data)
            ok = available > 0 and available * 100 / total >= threshold if total else False
            health = "HEALTHCHECKS_OFF" if all_off and data else ("HEALTHY" if ok
                                                                  else "UNHEALTHY")
            return KongJSON({"data": {
                "id": up["id"], "health": health, "balancer_health": health,
                "details": {"weight": {"total": total, "available": available,
                                       "unavailable": total - available}}},
                "next": None, "node_id": node.node_id})
        return KongJSON({"data": data, "offset": None, "next": None, "node_id": node.node_id})

    async def target_health(request: Request) -> Response:
        """Mark a target healthy or unhealthy in every worker's balancer (Kong §4.6)"""
        entities = node.config.entities
        up = _find(entities, request.path_params["upstream"])
        key = request.path_params["target"]
        target = None if up is None else next(
            (t for t in entities.get("targets") or ()
             if t["upstream"]["id"] == up["id"] and key in (t["id"], t["target"])), None)
        if up is None or target is None:
            return _message(404, "Not found")
        healthy = request.url.path.rstrip("/").endswith("/healthy")
        await node.set_target_health(up["name"], target["target"], healthy)
        return Response(status_code=204)

    return [Route("/upstreams/{upstream}/health", upstream_health, methods=["GET"]),
            Route("/upstreams/{upstream}/targets/{target}/healthy", target_health,
                  methods=["PUT"]),
            Route("/upstreams/{upstream}/targets/{target}/unhealthy", target_health,
                  methods=["PUT"])]
