"""Config as code in Python: the seed's ``GatewayConfigGenerator`` workflow, validated as it
builds.

    from tollway.config import Builder

    (Builder()
        .add_service("user-service", "http://user-service:1080", routes=[
            {"name": "users", "methods": ["GET", "POST"], "paths": ["/api/users"]}])
        .add_rate_limiting("user-service", minute=100)
        .export("config/gateway.yaml"))

Every ``add_*`` validates the whole document so far with Kong's rules and raises
``BuildError`` naming the field path (``services[0].routes[0].paths[0]: ...``) of the first
problem, so a mistake surfaces on the line that made it, not at deploy time.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from tollway.config.declarative import validate
from tollway.config.errors import ConfigError
from tollway.config.model import Config

__all__ = ["BuildError", "Builder"]


class BuildError(ValueError):
    def __init__(self, error: ConfigError, action: str) -> None:
        self.errors = error.errors
        first = error.errors[0] if error.errors else None
        where = f"{first.path}: {first.message}" if first else str(error)
        more = f" (and {len(error.errors) - 1} more)" if len(error.errors) > 1 else ""
        super().__init__(f"{action}: {where}{more}")
        self.path = first.path if first else None


class Builder:
    def __init__(self, *, tags: Iterable[str] = ()) -> None:
        self.tags = list(tags)
        self.doc: dict[str, Any] = {"_format_version": "3.0", "services": [], "plugins": []}

    # -- internals ----------------------------------------------------------------------
    def _tagged(self, entity: Mapping[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(dict(entity))
        if self.tags:
            own = list(out.get("tags") or [])
            out["tags"] = own + [t for t in self.tags if t not in own]
        return out

    def _check(self, action: str) -> None:
        try:
            validate(self.document())
        except ConfigError as exc:
            raise BuildError(exc, action) from None

    def _change(self, action: str, apply: Any) -> Builder:
        # validate a copy first so a failed add leaves the builder as it was
        saved = copy.deepcopy(self.doc)
        apply()
        try:
            self._check(action)
        except BuildError:
            self.doc = saved
            raise
        return self

    def _service(self, name: str) -> dict[str, Any]:
        for service in self.doc["services"]:
            if service.get("name") == name:
                return dict(service)
        raise KeyError(f"no service named {name!r}; add_service it first")

    def _route(self, name: str) -> dict[str, Any]:
        for service in self.doc["services"]:
            for route in service.get("routes", []):
                if route.get("name") == name:
                    return dict(route)
        raise KeyError(f"no route named {name!r}; add_route it first")

    # -- the workflow -------------------------------------------------------------------
    def add_service(self, name: str, url: str, routes: Iterable[Mapping[str, Any]] = (),
                    **fields: Any) -> Builder:
        service = self._tagged({"name": name, "url": url, **fields})
        service["routes"] = [self._tagged(r) for r in routes]
        service["plugins"] = []
        return self._change(f"add_service({name!r})",
                            lambda: self.doc["services"].append(service))

    def add_route(self, service: str, name: str, paths: Iterable[str] = (),
                  **fields: Any) -> Builder:
        route = self._tagged({"name": name, **({"paths": list(paths)} if paths else {}),
                              **fields})
        target = self._find_service(service)
        return self._change(f"add_route({service!r}, {name!r})",
                            lambda: target.setdefault("routes", []).append(route))

    def add_plugin(self, name: str, config: Mapping[str, Any] | None = None, *,
                   service: str | None = None, route: str | None = None,
                   consumer: str | None = None, **fields: Any) -> Builder:
        plugin = self._tagged({"name": name, **fields})
        if config is not None:
            plugin["config"] = dict(config)
        if service is not None:
            self._service(service)
            plugin["service"] = service
        if route is not None:
            self._route(route)
            plugin["route"] = route
        if consumer is not None:
            plugin["consumer"] = consumer
        return self._change(f"add_plugin({name!r})", lambda: self.doc["plugins"].append(plugin))

    def add_rate_limiting(self, service: str | None = None, requests_per_minute: int | None
                          = None, *, route: str | None = None, policy: str = "local",
                          **limits: Any) -> Builder:
        """The seed's ``add_rate_limiting(service_name, requests_per_minute)``; other windows
        (``second=``, ``hour=``) and settings (``redis_host=``) as keywords."""
        config: dict[str, Any] = {"policy": policy, **limits}
        if requests_per_minute is not None:
            config["minute"] = requests_per_minute
        return self.add_plugin("rate-limiting", config, service=service, route=route)

    def add_consumer(self, username: str, *, jwt_secrets: Iterable[Mapping[str, Any]] = (),
                     keyauth_credentials: Iterable[Mapping[str, Any]] = (),
                     **fields: Any) -> Builder:
        consumer = self._tagged({"username": username, **fields})
        if jwt_secrets:
            consumer["jwt_secrets"] = [dict(s) for s in jwt_secrets]
        if keyauth_credentials:
            consumer["keyauth_credentials"] = [dict(k) for k in keyauth_credentials]
        return self._change(f"add_consumer({username!r})",
                            lambda: self.doc.setdefault("consumers", []).append(consumer))

    def _find_service(self, name: str) -> dict[str, Any]:
        for service in self.doc["services"]:
            if service.get("name") == name:
                found: dict[str, Any] = service
                return found
        raise KeyError(f"no service named {name!r}; add_service it first")

    # -- results ------------------------------------------------------------------------
    def document(self) -> dict[str, Any]:
        """The declarative document (empty lists left out)."""
        doc = copy.deepcopy(self.doc)
        for service in doc.get("services", []):
            for key in ("routes", "plugins"):
                if not service.get(key):
                    service.pop(key, None)
        for key in ("services", "plugins", "consumers"):
            if not doc.get(key):
                doc.pop(key, None)
        return doc

    def build(self) -> Config:
        return validate(self.document())

    def to_yaml(self) -> str:
        return str(yaml.safe_dump(self.document(), sort_keys=False, default_flow_style=False))

    def export(self, filename: str | os.PathLike[str]) -> None:
        """Write YAML (or JSON for a ``.json`` name), creating the folder."""
        path = os.fspath(filename)
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        text = (json.dumps(self.document(), indent=2) + "\n" if path.endswith(".json")
                else self.to_yaml())
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
