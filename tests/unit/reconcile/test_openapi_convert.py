"""openapi2tollway conversion (decK's openapi2kong rules): names, regex paths, priorities,
services per servers, extensions, ids; the result validates and routes as intended."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tollway.config.declarative import validate
from tollway.dataplane.router.router import build_router
from tollway.reconcile.openapi import OpenAPIError, convert, slugify

SPEC = Path(__file__).parent / "openapi_fixtures" / "user-order-api.yaml"


def _spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC.read_text())


def _routes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for s in doc["services"] for r in s["routes"]}


def test_slugify_follows_go_slugify() -> None:
    assert slugify("User Service") == "user-service"
    assert slugify("/api/users/{userId}") == "api-users-userid"
    assert slugify("Café API") == "cafe-api"
    assert slugify("doc", "/", "GET") == "doc_get"
    assert slugify("User Service", "/a/b", inso=True) == "User_Service-a_b"


def test_routes_names_paths_priorities() -> None:
    doc = convert(_spec())
    assert doc["_format_version"] == "3.0"
    routes = _routes(doc)
    assert set(routes) == {
        "user-service_listusers", "user-service_createuser", "user-service_api-users-me_get",
        "user-service_getuser", "user-service_api-users-userid_delete",
        "user-service_api-users-userid-orders-order-id_get", "user-service_health_get"}
    get_user = routes["user-service_getuser"]
    assert get_user["paths"] == ["~/api/users/(?<userid>[^#?/]+)$"]
    assert get_user["methods"] == ["GET"]
    assert get_user["regex_priority"] == 100
    assert get_user["strip_path"] is False
    assert routes["user-service_api-users-me_get"]["regex_priority"] == 200
    # regex metacharacters of the OAS path are escaped
    assert routes["user-service_health_get"]["paths"] == ["~/health\\.json$"]
    assert routes["user-service_api-users-userid-orders-order-id_get"]["paths"] == [
        "~/api/users/(?<userid>[^#?/]+)/orders/(?<order_id>[^#?/]+)$"]


def test_services_from_servers_and_deterministic_ids() -> None:
    doc = convert(_spec())
    main, orders = doc["services"]
    assert (main["name"], main["protocol"], main["host"], main["port"], main["path"]) == (
        "user-service", "http", "user-service", 1080, "/")
    assert main["id"] == str(uuid.uuid5(uuid.NAMESPACE_DNS, "user-service.service"))
    # a path with its own servers gets its own service, with the document's plugins
    assert (orders["host"], orders["path"]) == ("order-service", "/v2")
    assert [p["name"] for p in orders["plugins"]] == ["rate-limiting"]
    assert orders["plugins"][0]["id"] == str(uuid.uuid5(
        uuid.NAMESPACE_DNS, "user-service_api-users-userid-orders-order-id.plugin.rate-limiting"))
    route = _routes(doc)["user-service_listusers"]
    assert route["id"] == str(uuid.uuid5(uuid.NAMESPACE_DNS, "user-service_listusers.route"))
    assert convert(_spec()) == doc  # deterministic
    no_ids = convert(_spec(), no_id=True)
    assert "id" not in no_ids["services"][0] and "id" not in _routes(no_ids)[route["name"]]


def test_plugins_refs_and_tags() -> None:
    doc = convert(_spec(), tags=["team-users"])
    create = _routes(doc)["user-service_createuser"]
    assert create["plugins"][0]["name"] == "key-auth"
    assert create["plugins"][0]["config"] == {"key_names": ["apikey"]}  # from components
    assert create["plugins"][0]["tags"] == ["team-users"]
    assert _routes(doc)["user-service_health_get"]["tags"] == ["team-users", "probe"]
    assert doc["services"][0]["tags"] == ["team-users"]
    spec = _spec()
    spec["x-kong-tags"] = ["from-spec"]
    assert convert(spec)["services"][0]["tags"] == ["from-spec"]


def test_several_servers_make_an_upstream() -> None:
    spec = {"openapi": "3.0.0", "info": {"title": "Multi"},
            "servers": [{"url": "https://a.example/api"},
                        {"url": "{scheme}://b.example:8443/api",
                         "variables": {"scheme": {"default": "https"}}}],
            "paths": {"/x": {"get": {}}}}
    doc = convert(spec)
    svc = doc["services"][0]
    assert svc["host"] == "multi.upstream" and svc["port"] == 443 and svc["path"] == "/api"
    assert [t["target"] for t in doc["upstreams"][0]["targets"]] == [
        "a.example:443", "b.example:8443"]
    validate(doc)


def test_route_defaults_and_lower_priority_for_templated_paths() -> None:
    spec = {"openapi": "3.1.0", "info": {"title": "D"},
            "x-kong-route-defaults": {"regex_priority": 50, "strip_path": True,
                                      "service": {"id": "x"}},
            "x-kong-service-defaults": {"retries": 1},
            "paths": {"/a": {"get": {}}, "/a/{id}": {"get": {}}}}
    routes = _routes(convert(spec))
    assert routes["d_a_get"]["regex_priority"] == 50
    assert routes["d_a-id_get"]["regex_priority"] == 49
    assert routes["d_a_get"]["strip_path"] is True and "service" not in routes["d_a_get"]
    assert convert(spec)["services"][0]["retries"] == 1


@pytest.mark.parametrize(("spec", "message"), [
    ({"swagger": "2.0"}, "openapi: expected an OpenAPI 3 document"),
    ({"openapi": "3.0.0", "info": {"title": "t"}, "x-kong-plugin-cors": {"$ref": "#/x"}},
     "$.x-kong-plugin-cors: all 'x-kong-...' references must be at"),
    ({"openapi": "3.0.0", "info": {"title": "t"},
      "x-kong-plugin-cors": {"$ref": "#/components/x-kong/nope"}}, "reference"),
    ({"openapi": "3.0.0", "info": {"title": "t"}, "paths": {"/a": {"x-kong-name": 3}}},
     "paths./a: expected 'x-kong-name' to be a string"),
    ({"openapi": "3.0.0", "info": {"title": "t"}, "servers": [{"url": "not a url"}]},
     "$.servers[0].url: failed to parse uri"),
])
def test_bad_specs_name_the_place(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(OpenAPIError, match=None) as info:
        convert(spec)
    assert message in str(info.value)


def test_generated_file_validates_and_routes_as_intended() -> None:
    config = validate(convert(_spec(), tags=["team-users"]))
    router = build_router(config)

    def route(method: str, path: str) -> str | None:
        m = router.match(method, "gw.local", path, {}, "http")
        return None if m is None else str(m.route["name"])

    assert route("GET", "/api/users") == "user-service_listusers"
    assert route("POST", "/api/users") == "user-service_createuser"
    # the literal path (priority 200) beats the templated one (100)
    assert route("GET", "/api/users/me") == "user-service_api-users-me_get"
    assert route("GET", "/api/users/42") == "user-service_getuser"
    assert route("DELETE", "/api/users/42") == "user-service_api-users-userid_delete"
    assert route("GET", "/api/users/42/orders/7") == \
        "user-service_api-users-userid-orders-order-id_get"
    assert route("GET", "/api/users/42/extra") is None  # anchored with $
    assert route("PUT", "/api/users") is None
    assert route("GET", "/healthXjson") is None
    m = router.match("GET", "gw.local", "/api/users/42/orders/7", {}, "http")
    assert m is not None and m.captures and m.captures["userid"] == "42"
    assert m.captures["order_id"] == "7"
