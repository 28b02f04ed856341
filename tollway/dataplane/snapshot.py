"""The immutable compiled config a worker serves from, swapped in with one assignment.

Everything a request needs that can be derived from the config is derived here, once:
the router, per-service connection specs (origin, Host header bytes, timeouts in seconds,
TLS context) and per-route protocol flags. Building raises on anything that cannot be
compiled, so a bad config never replaces a good snapshot.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tollway.dataplane.router import build_router
from tollway.dataplane.tls import service_context
from tollway.dataplane.upstream.balancer import Balancer, registry_for
from tollway.dataplane.upstream.pool import Origin
from tollway.plugins.base import BuildContext
from tollway.plugins.chain import EMPTY, Chain, build_chains

if TYPE_CHECKING:
    from tollway.config.model import Config
    from tollway.dataplane.resolver import Resolver
    from tollway.settings import Settings

DEFAULT_PORTS = {"http": 80, "https": 443, "grpc": 80, "grpcs": 443}


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    id: str
    name: str | None
    host: str
    port: int
    tls: bool
    sni: str | None  # TLS server name for https upstreams (the Host sent, without port)
    origin: Origin | None  # known when the host is an IP or in the hosts file
    host_header: bytes
    connect_timeout: float
    write_timeout: float
    read_timeout: float
    retries: int
    ssl_context: ssl.SSLContext | None
    balancer: Balancer | None = None  # the service's host names an upstream (Kong §4.1)
    # What an https connection was set up with (verification, CAs, depth, client
    # certificate): part of the pool key, so services that differ never share one.
    tls_key: tuple[object, ...] | None = None

    def peer_origin(self, peer_origin: Origin) -> Origin:
        """The pool key for a balancer target: the target's address with this service's
        TLS name and settings (targets are shared by every service of the upstream)."""
        if self.sni is None:
            return peer_origin
        return (peer_origin[0], peer_origin[1], self.sni, self.tls_key)


@dataclass(frozen=True, slots=True)
class RouteSpec:
    https_only: bool
    redirect_code: int
    chain: Chain | None = None  # the route's plugins (None: none apply)


def _service_spec(svc: dict[str, Any], resolver: Resolver | None,
                  balancers: dict[str, Balancer],
                  entities: Mapping[str, list[dict[str, Any]]]) -> ServiceSpec:
    host = svc["host"]
    port = int(svc["port"])
    protocol = svc["protocol"]
    tls = protocol in ("https", "grpcs", "tls")
    origin: Origin | None = None
    sni = host if tls else None
    balancer = balancers.get(host)
    default_port = DEFAULT_PORTS.get(protocol, 80)
    host_header = host if port == default_port else f"{host}:{port}"
    tls_key = _tls_key(svc) if tls else None
    if balancer is not None:
        # the targets' ports are used; Host is the upstream's host_header, else its name
        host_header = balancer.upstream.get("host_header") or host
        if tls:  # the name the targets' certificates are checked against (nginx's
            sni = host_header.split(":", 1)[0]  # proxy_ssl_name $upstream_host)
    else:
        try:
            ipaddress.ip_address(host.strip("[]"))
            origin = (host.strip("[]"), port, sni, tls_key)
        except ValueError:
            ip = resolver.static(host) if resolver is not None else None
            if ip is not None:
                origin = (ip, port, sni, tls_key)
    return ServiceSpec(
        id=svc["id"], name=svc.get("name"), host=host, port=port, tls=tls, sni=sni, origin=origin,
        host_header=host_header.encode("idna") if not host_header.isascii()
        else host_header.encode(),
        connect_timeout=svc["connect_timeout"] / 1000,
        write_timeout=svc["write_timeout"] / 1000,
        read_timeout=svc["read_timeout"] / 1000,
        retries=int(svc["retries"]),
        ssl_context=service_context(svc, entities) if tls else None,
        balancer=balancer,
        tls_key=tls_key,
    )


def _tls_key(svc: dict[str, Any]) -> tuple[object, ...]:
    """The service fields its TLS context is built from (tls.service_context)."""
    ref = svc.get("client_certificate")
    return (svc.get("tls_verify"), svc.get("tls_verify_depth"),
            tuple(svc.get("ca_certificates") or ()),
            ref.get("id") if isinstance(ref, dict) else ref)


def _router(entities: Mapping[str, list[dict[str, Any]]], previous: Snapshot | None) -> Any:
    """The router for these routes and services: the previous snapshot's when both are
    unchanged (a plugin, consumer or target change), since the router depends on nothing
    else; comparing the entities costs a fraction of rebuilding thousands of routes."""
    routes, services = entities["routes"], entities["services"]
    if previous is not None:
        old = previous.config.entities
        if old.get("routes") == routes and old.get("services") == services:
            return previous.router
    return build_router(routes, services)


class Snapshot:
    __slots__ = ("balancers", "chains", "config", "global_chain", "hash", "header_map",
                 "router", "routes", "services")

    def __init__(self, config: Config, resolver: Resolver | None = None,
                 settings: Settings | None = None, worker: dict[str, Any] | None = None,
                 offline: bool = False, previous: Snapshot | None = None) -> None:
        self.config = config
        self.hash = config.hash
        entities = config.entities
        self.router = _router(entities, previous)
        # Plugin instances are built here, once per config: a plugin whose constructor
        # rejects its config fails the whole snapshot, and the old one keeps serving.
        self.chains, self.global_chain = build_chains(
            config, BuildContext(config, settings, worker, offline))
        # With plugins, requests get their lower-cased header map while their headers are
        # scanned (plugins read headers by name); without, nobody reads it.
        self.header_map = bool(self.chains) or self.global_chain is not EMPTY
        # Balancers live in the worker's state and outlive snapshots (balancer.py); they are
        # committed (probes started, replaced ones stopped) only once everything compiled.
        wstate = worker if worker is not None else {}
        registry = registry_for(wstate)
        self.balancers = registry.build(entities, resolver, wstate)
        self.services = {s["id"]: _service_spec(s, resolver, self.balancers, entities)
                         for s in entities["services"]}
        self.routes = {
            r["id"]: RouteSpec(
                https_only="https" in r["protocols"] and "http" not in r["protocols"],
                redirect_code=int(r["https_redirect_status_code"]),
                chain=self.chains.get(r["id"]),
            )
            for r in entities["routes"]
        }
        registry.commit(self.balancers)
