"""OpenAPI 3 → declarative file, with decK's ``file openapi2kong`` rules (go-apiops).

* One service for the document, named ``x-kong-name`` or the slugified ``info.title``, its
  URL from ``servers[0]`` (several servers, or ``x-kong-upstream-defaults``: an upstream
  ``<name>.upstream`` with one target per server). A path or operation with its own
  ``servers`` or ``x-kong-service-defaults``/``x-kong-upstream-defaults`` gets a service
  of its own.
* One route per path + method: name ``<doc>_<path-slug>_<method>`` (``<doc>_<operationId>``
  when the operation has one, ``x-kong-name`` overrides either); ``paths`` =
  ``~<escaped path>$`` with ``{param}`` → ``(?<param>[^#?/]+)``; ``methods: [METHOD]``;
  ``regex_priority`` 200 (literal path) or 100 (templated); ``strip_path: false``.
* ``x-kong-plugin-<name>`` on document, path or operation; ``x-kong-*-defaults``;
  ``x-kong-tags`` (replaced by ``--select-tag``); ``$ref`` into ``#/components/x-kong/``.
* Ids: UUIDv5 in the DNS namespace from the entity's base name (``<name>.service``,
  ``<name>.route``, ``<name>.upstream``, ``<name>.plugin.<plugin>``) unless ``no_id``.

Not carried over: OIDC (``--generate-security``) and the request-validator schema
generation, which need plugins tollway does not have.
"""

from __future__ import annotations

import copy
import json
import re
import unicodedata
import uuid
from typing import Any
from urllib.parse import urlsplit

__all__ = ["OpenAPIError", "convert", "slugify"]

_METHODS = ("connect", "delete", "get", "head", "options", "patch", "post", "put", "trace")
_PRIORITY_PLAIN = 200  # literal paths win over templated ones, as OAS says
_PRIORITY_PARAMS = 100
_PARAM = re.compile(r"{([^}]+)}")
_ESCAPE = ("(", ")", ".", "+", "?", "*", "[", "$")


class OpenAPIError(ValueError):
    """The spec cannot be converted; the message names the place at fault."""


def slugify(*parts: str, inso: bool = False) -> str:
    """go-slugify as go-apiops configures it: latin-ise, lower-case (not in inso mode), runs
    of other characters → ``-`` (``_`` in inso mode); parts joined by ``_`` (``-``)."""
    out = []
    for part in parts:
        text = unicodedata.normalize("NFKD", part).encode("ascii", "ignore").decode()
        if inso:
            slug = re.sub(r"[^a-zA-Z0-9\-]+", "_", text).strip("_")
        else:
            slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
        if slug:
            out.append(slug)
    return ("-" if inso else "_").join(out)


def _capture_name(name: str, inso: bool) -> str:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-zA-Z0-9]+", "_", text if inso else text.lower()).strip("_")


class _Converter:
    def __init__(self, spec: dict[str, Any], tags: list[str] | None, no_id: bool,
                 inso: bool, namespace: uuid.UUID) -> None:
        self.spec = spec
        self.no_id = no_id
        self.inso = inso
        self.namespace = namespace
        self.join = "-" if inso else "_"
        comps = (spec.get("components") or {}).get("x-kong", {})
        if not isinstance(comps, dict):
            raise OpenAPIError("components.x-kong: expected an object")
        self.components = comps
        self.tags = list(tags) if tags is not None else self._tags(spec, "x-kong-tags")
        self.services: list[dict[str, Any]] = []
        self.upstreams: list[dict[str, Any]] = []

    # -- helpers ---------------------------------------------------------

    def _id(self, name: str) -> str:
        return str(uuid.uuid5(self.namespace, name))

    def _tags(self, obj: dict[str, Any], where: str) -> list[str]:
        value = obj.get("x-kong-tags")
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise OpenAPIError(f"{where}: expected 'x-kong-tags' to be an array of strings")
        return list(value)

    def _object(self, obj: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
        value = obj.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise OpenAPIError(f"{where}.{key}: expected a JSON object")
        ref = value.get("$ref")
        if ref is None:
            return copy.deepcopy(value)
        if not isinstance(ref, str):
            raise OpenAPIError(f"{where}.{key}: expected '$ref' pointer to be a string")
        if not ref.startswith("#/components/x-kong/"):
            raise OpenAPIError(f"{where}.{key}: all 'x-kong-...' references must be at "
                               f"'#/components/x-kong/...'")
        target: Any = self.components
        for segment in ref.split("/")[3:]:
            target = target.get(segment) if isinstance(target, dict) else None
            if target is None:
                raise OpenAPIError(f"{where}.{key}: reference '{ref}' not found")
        if not isinstance(target, dict):
            raise OpenAPIError(f"{where}.{key}: reference '{ref}' is not a JSON object")
        return copy.deepcopy(target)

    def _plugins(self, obj: dict[str, Any], inherited: list[dict[str, Any]] | None,
                 base: str, where: str) -> list[dict[str, Any]]:
        plugins: dict[str, dict[str, Any]] = {}
        for plugin in inherited or ():
            copied = copy.deepcopy(plugin)
            if not self.no_id:
                copied["id"] = self._id(f"{base}.plugin.{copied['name']}")
            copied["tags"] = list(self.tags)
            plugins[copied["name"]] = copied
        for key in obj:
            if not key.startswith("x-kong-plugin-"):
                continue
            name = key[len("x-kong-plugin-"):]
            plugin = self._object(obj, key, where) or {}
            plugin["name"] = name
            if not self.no_id:
                plugin["id"] = self._id(f"{base}.plugin.{name}")
            plugin["tags"] = list(self.tags)
            # a plugin nested under its service or route names neither (consumer is allowed)
            plugin.pop("service", None)
            plugin.pop("route", None)
            plugins[name] = plugin
        return [plugins[name] for name in sorted(plugins)]

    def _service(self, base: str, servers: list[Any], defaults: dict[str, Any] | None,
                 upstream_defaults: dict[str, Any] | None, where: str
                 ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        service = copy.deepcopy(defaults) if defaults else {}
        if not self.no_id:
            service["id"] = self._id(f"{base}.service")
        service["name"] = base
        service["tags"] = list(self.tags)
        service["plugins"] = []
        service["routes"] = []
        default_scheme = service.get("protocol") or "https"
        targets = [_server_url(s, default_scheme, f"{where}.servers[{i}]")
                   for i, s in enumerate(servers)] or [("https" if default_scheme == "https"
                                                       else default_scheme, "localhost",
                                                       None, "/")]
        scheme, host, port, path = targets[0]
        service.setdefault("protocol", scheme)
        service.setdefault("path", path)
        if "port" not in service:
            service["port"] = port if port is not None else (
                80 if service["protocol"] == "http" else 443)
        upstream = None
        if "host" not in service:
            if len(targets) == 1 and upstream_defaults is None:
                service["host"] = host
            else:
                upstream = self._upstream(base, targets, upstream_defaults, where)
                service["host"] = upstream["name"]
        return service, upstream

    def _upstream(self, base: str, targets: list[tuple[str, str, int | None, str]],
                  defaults: dict[str, Any] | None, where: str) -> dict[str, Any]:
        upstream = copy.deepcopy(defaults) if defaults else {}
        name = f"{base}.upstream"
        if not self.no_id:
            upstream["id"] = self._id(name)
        upstream["name"] = name
        upstream["tags"] = list(self.tags)
        given = upstream.get("targets")
        if given is not None:
            if not isinstance(given, list) or not all(isinstance(t, dict) for t in given):
                raise OpenAPIError(f"{where}.x-kong-upstream-defaults.targets: expected an "
                                   f"array of objects")
            for target in given:
                target["tags"] = list(self.tags)
            return upstream
        upstream["targets"] = [
            {"target": f"{host}:{port if port is not None else (80 if s == 'http' else 443)}",
             "tags": list(self.tags)}
            for s, host, port, _ in targets]
        return upstream

    # -- the walk --------------------------------------------------------

    def run(self, doc_name: str | None) -> dict[str, Any]:
        spec = self.spec
        name = doc_name or self._kong_name(spec, "$") or (spec.get("info") or {}).get("title")
        if not name:
            name = str(uuid.uuid4())
        doc_base = slugify(name, inso=self.inso)
        doc_service_defaults = self._object(spec, "x-kong-service-defaults", "$")
        doc_upstream_defaults = self._object(spec, "x-kong-upstream-defaults", "$")
        doc_route_defaults = self._object(spec, "x-kong-route-defaults", "$")
        doc_servers = spec.get("servers") or []
        doc_service, doc_upstream = self._service(doc_base, doc_servers, doc_service_defaults,
                                                  doc_upstream_defaults, "$")
        self._add(doc_service, doc_upstream)
        doc_plugins = self._plugins(spec, None, doc_base, "$")
        doc_service["plugins"] = doc_plugins

        paths = spec.get("paths") or {}
        if not isinstance(paths, dict):
            raise OpenAPIError("paths: expected an object")
        for path in sorted(paths):
            item = paths[path]
            where = f"paths.{path}"
            if not isinstance(item, dict):
                raise OpenAPIError(f"{where}: expected an object")
            path_base = self._path_base(item, path, where)
            path_base = self.join.join(p for p in (doc_base, path_base) if p)
            svc_defaults = self._object(item, "x-kong-service-defaults", where)
            up_defaults = self._object(item, "x-kong-upstream-defaults", where)
            new_service = svc_defaults is not None or up_defaults is not None
            new_upstream = up_defaults is not None
            svc_defaults = svc_defaults if svc_defaults is not None else doc_service_defaults
            up_defaults = up_defaults if up_defaults is not None else doc_upstream_defaults
            route_defaults = self._object(item, "x-kong-route-defaults", where)
            route_defaults = route_defaults if route_defaults is not None else doc_route_defaults
            servers = item.get("servers") or []
            if servers:
                new_service = new_upstream = True
            else:
                servers = doc_servers
            if new_service:
                path_service, path_upstream = self._service(path_base, servers, svc_defaults,
                                                            up_defaults, where)
                path_service["plugins"] = self._plugins(item, doc_plugins, path_base, where)
                if path_upstream is not None and not new_upstream:
                    path_service["host"] = doc_service["host"]
                    path_upstream = None
                self._add(path_service, path_upstream)
                path_plugins: list[dict[str, Any]] = []
            else:
                path_service = doc_service
                path_plugins = self._plugins(item, None, path_base, where)

            for method in sorted(m for m in item if m in _METHODS):
                op = item[method]
                if not isinstance(op, dict):
                    raise OpenAPIError(f"{where}.{method}: expected an object")
                self._operation(path, method.upper(), op, f"{where}.{method}", doc_base,
                                path_base, path_service, new_service, svc_defaults,
                                up_defaults, route_defaults, servers, path_plugins, item)

        doc: dict[str, Any] = {"_format_version": "3.0", "services": self.services}
        if self.upstreams:
            doc["upstreams"] = self.upstreams
        return doc

    def _add(self, service: dict[str, Any], upstream: dict[str, Any] | None) -> None:
        self.services.append(service)
        if upstream is not None:
            self.upstreams.append(upstream)

    def _kong_name(self, obj: dict[str, Any], where: str) -> str:
        value = obj.get("x-kong-name")
        if value is None:
            return ""
        if not isinstance(value, str):
            raise OpenAPIError(f"{where}: expected 'x-kong-name' to be a string")
        return value

    def _path_base(self, item: dict[str, Any], path: str, where: str) -> str:
        given = self._kong_name(item, where)
        if given:
            return slugify(given, inso=self.inso)
        base = slugify(path, inso=self.inso)
        # '/a' and '/a/' would get the same name: decK marks the trailing slash with '~'
        return base + "~" if path.endswith("/") and not self.inso else base

    def _operation(self, path: str, method: str, op: dict[str, Any], where: str,
                   doc_base: str, path_base: str, path_service: dict[str, Any],
                   new_path_service: bool, svc_defaults: dict[str, Any] | None,
                   up_defaults: dict[str, Any] | None, route_defaults: dict[str, Any] | None,
                   servers: list[Any], path_plugins: list[dict[str, Any]],
                   item: dict[str, Any]) -> None:
        given = self._kong_name(op, where)
        if given:
            base = self.join.join((doc_base if self.inso else path_base,
                                   slugify(given, inso=self.inso)))
        elif op.get("operationId"):
            base = self.join.join((doc_base, slugify(str(op["operationId"]), inso=self.inso)))
        else:
            base = self.join.join((path_base, slugify(method.lower(), inso=self.inso)))

        op_svc_defaults = self._object(op, "x-kong-service-defaults", where)
        op_up_defaults = self._object(op, "x-kong-upstream-defaults", where)
        new_service = op_svc_defaults is not None or op_up_defaults is not None
        new_upstream = op_up_defaults is not None
        op_route_defaults = self._object(op, "x-kong-route-defaults", where)
        if op_route_defaults is None:
            op_route_defaults = route_defaults
        op_servers = op.get("servers") or []
        if op_servers:
            new_service = new_upstream = True
        else:
            op_servers = servers
        service = path_service
        if new_service:
            service, upstream = self._service(
                base, op_servers,
                op_svc_defaults if op_svc_defaults is not None else svc_defaults,
                op_up_defaults if op_up_defaults is not None else up_defaults, where)
            if upstream is not None and not new_upstream:
                service["host"] = path_service["host"]
                upstream = None
            self._add(service, upstream)
            plugins = self._plugins(self.spec, None, base, "$")
            plugins = self._plugins(item, plugins, base, where)
            plugins = self._plugins(op, plugins, base, where)
        elif new_path_service:
            plugins = self._plugins(op, None, base, where)
        else:
            plugins = self._plugins(op, path_plugins, base, where)

        route: dict[str, Any] = copy.deepcopy(op_route_defaults) if op_route_defaults else {}
        route.pop("service", None)
        route["plugins"] = plugins
        converted = path
        for char in _ESCAPE:
            converted = converted.replace(char, "\\" + char)
        priority = _PRIORITY_PLAIN
        for var in _PARAM.findall(converted):
            priority = _PRIORITY_PARAMS
            capture = _capture_name(var, self.inso)
            if len(capture) >= 32:
                raise OpenAPIError(f"{where}: path-parameter name exceeds 32 characters: "
                                   f"'{var}' (sanitized to '{capture}')")
            converted = converted.replace("{" + var + "}", f"(?<{capture}>[^#?/]+)", 1)
        route["paths"] = [f"~{converted}$"]
        if not self.no_id:
            route["id"] = self._id(f"{base}.route")
        route["name"] = base
        route["methods"] = [method]
        route["tags"] = [*self.tags, *self._tags(op, where)]
        if "regex_priority" not in route:
            route["regex_priority"] = priority
        elif priority == _PRIORITY_PARAMS:
            # the default is meant for literal paths; templated ones must stay below them
            try:
                route["regex_priority"] = int(route["regex_priority"]) - 1
            except (TypeError, ValueError):
                raise OpenAPIError(f"{where}: x-kong-route-defaults.regex_priority: expected "
                                   f"an integer") from None
        route.setdefault("strip_path", False)
        service["routes"].append(route)


def _server_url(server: Any, default_scheme: str, where: str
                ) -> tuple[str, str, int | None, str]:
    """(scheme, host, port or None, path) of one server object, variables at their
    defaults; no host → localhost; no scheme → from the port (80/443) or the default."""
    if not isinstance(server, dict) or not isinstance(server.get("url"), str):
        raise OpenAPIError(f"{where}.url: expected a string")
    url = server["url"]
    for name, var in (server.get("variables") or {}).items():
        default = var.get("default") if isinstance(var, dict) else None
        url = url.replace("{" + name + "}", str(default if default is not None else ""))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OpenAPIError(f"{where}.url: failed to parse uri '{url}': {exc}") from None
    if not parts.scheme and not url.startswith("/"):
        raise OpenAPIError(f"{where}.url: failed to parse uri '{url}': expected an absolute "
                           f"URL or a path")
    host = parts.hostname or "localhost"
    scheme = parts.scheme or {80: "http", 443: "https"}.get(port or 0, default_scheme)
    return scheme, host, port, parts.path or "/"


def convert(spec: Any, *, tags: list[str] | None = None, doc_name: str | None = None,
            no_id: bool = False, inso_compat: bool = False,
            namespace: uuid.UUID = uuid.NAMESPACE_DNS) -> dict[str, Any]:
    """An OpenAPI 3 document (parsed) → a declarative document (``_format_version`` 3.0)."""
    if not isinstance(spec, dict):
        raise OpenAPIError("expected an OpenAPI document (an object)")
    version = spec.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        found = json.dumps(version) if "openapi" in spec else "missing"
        raise OpenAPIError(f"openapi: expected an OpenAPI 3 document ('openapi: 3.x'), "
                           f"got {found}")
    return _sorted(_Converter(spec, tags, no_id, inso_compat, namespace).run(doc_name))


def _sorted(value: Any) -> Any:
    # decK writes Go maps, i.e. keys in alphabetical order; the same order keeps our output
    # stable and comparable with decK's
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value
