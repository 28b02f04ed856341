"""Unit tests of the Admin API's own logic: state.py, form bodies, error bodies, tokens,
and the OpenAPI document against the implemented routes."""

from __future__ import annotations

import hashlib
import re

import pytest
from starlette.routing import Route

from tollway import settings as settings_mod
from tollway.config.declarative import validate
from tollway.config.model import Config
from tollway.controlplane import state
from tollway.controlplane.admin import auth, bodies, create_admin_app, errors, openapi
from tollway.node.supervisor import Supervisor

DOC = {"_format_version": "3.0",
       "services": [{"name": "s", "host": "h", "routes": [{"name": "r", "paths": ["/"]}],
                     "plugins": [{"name": "cors"}]}],
       "consumers": [{"username": "c", "keyauth_credentials": [{"key": "k"}]}],
       "upstreams": [{"name": "u", "targets": [{"target": "10.0.0.1"}]}]}


@pytest.fixture
def entities() -> state.Entities:
    return validate(DOC).entities


def test_find_by_id_and_endpoint_key(entities: state.Entities) -> None:
    svc = entities["services"][0]
    assert state.find(entities, "services", "s") is svc
    assert state.find(entities, "services", svc["id"].upper()) is svc
    assert state.find(entities, "targets", "10.0.0.1") is entities["targets"][0]  # :8000 added
    assert state.find(entities, "keyauth_credentials", "k") is not None


def test_delete_restricts_and_cascades(entities: state.Entities) -> None:
    with pytest.raises(state.Referenced) as exc:
        state.delete(entities, "services", entities["services"][0]["id"])
    assert exc.value.child == "routes"
    out = state.delete(entities, "routes", entities["routes"][0]["id"])
    out = state.delete(out, "services", out["services"][0]["id"])
    assert out["services"] == [] and out["plugins"] == []
    out = state.delete(entities, "consumers", entities["consumers"][0]["id"])
    assert out["keyauth_credentials"] == [] and len(entities["keyauth_credentials"]) == 1


def test_conflicts(entities: state.Entities) -> None:
    svc = dict(entities["services"][0])
    with pytest.raises(state.Conflict) as exc:
        state.check_conflicts(entities, "services", {**svc, "id": "x"})
    assert (exc.value.kind, exc.value.values) == ("unique", {"name": "s"})
    with pytest.raises(state.Conflict) as exc:
        state.check_conflicts(entities, "services", {**svc, "name": "other"})
    assert exc.value.kind == "pk"
    state.check_conflicts(entities, "services", svc, replacing=svc["id"])  # itself: fine
    plugin = {**entities["plugins"][0], "id": "p2"}
    with pytest.raises(state.Conflict):  # same name + scope: Kong's cache key
        state.check_conflicts(entities, "plugins", plugin)


def test_pages_and_offsets() -> None:
    rows = [{"id": f"{i:02d}"} for i in range(5)]
    first, off = state.page(rows, 2, None)
    assert [r["id"] for r in first] == ["00", "01"] and off is not None
    assert state.decode_offset(off) == "01" and "=" not in off
    last, off2 = state.page(rows, 3, "01")
    assert [r["id"] for r in last] == ["02", "03", "04"] and off2 is None
    with pytest.raises(state.BadOffset, match="base64"):
        state.decode_offset("!!")


def test_tag_expressions() -> None:
    assert state.parse_tags("a,b") == (["a", "b"], True)
    assert state.parse_tags("a/b") == (["a", "b"], False)
    for bad in ("a,b/c", "a,", "a,b,c,d,e,f"):
        with pytest.raises(ValueError):
            state.parse_tags(bad)
    rows: list[dict[str, object]] = [{"tags": ["a", "b"]}, {"tags": ["a"]}, {"tags": None}]
    assert len(state.filter_tags(rows, ["a", "b"], True)) == 1
    assert len(state.filter_tags(rows, ["b", "a"], False)) == 2


def test_form_nested_keys_and_coercion() -> None:
    body = bodies.parse_form("paths[]=/a&paths[]=/b&config.minute=5&methods=GET&methods=PUT"
                             "&hosts[1]=x&name=n")
    assert body == {"paths": ["/a", "/b"], "config": {"minute": "5"},
                    "methods": ["GET", "PUT"], "hosts": ["x"], "name": "n"}
    route = bodies.coerce_entity("routes", {"strip_path": "false", "regex_priority": "4",
                                            "paths": "/one"})
    assert route == {"strip_path": False, "regex_priority": 4, "paths": ["/one"]}


def test_schema_violation_message() -> None:
    err = errors.schema_violation({"host": "required field missing",
                                   "@entity": ["at least one of 'a', 'b'"],
                                   "config": {"minute": "bad", "hour": "worse"}})
    assert err.text == ("4 schema violations (at least one of 'a', 'b'; config.hour: worse; "
                        "config.minute: bad; host: required field missing)")
    assert errors.schema_violation({"x": "y"}).text == "schema violation (x: y)"


def test_tokens_file_and_identify() -> None:
    hexd = hashlib.sha256(b"t0k").hexdigest()
    tokens = auth.parse_tokens_file(f"# c\nro read-only sha256:{hexd}\n", "f")
    assert auth.identify(tokens, "t0k") == tokens[0] and auth.identify(tokens, "t0") is None
    for bad in ("x admin", "x root sha256:" + hexd, "x admin md5:" + hexd[:32]):
        with pytest.raises(auth.TokenError):
            auth.parse_tokens_file(bad, "f")
    assert auth.presented_token({"authorization": "Bearer  abc "}) == "abc"
    assert auth.presented_token({"kong-admin-token": "k"}) == "k"


def test_insecure_bind_rule() -> None:
    def s(**env: str) -> settings_mod.Settings:
        return settings_mod.load(env={f"TOLLWAY_{k.upper()}": v for k, v in env.items()})

    assert auth.insecure_bind(s(admin_listen="127.0.0.1:8001")) is None
    assert auth.insecure_bind(s(admin_listen="[::1]:8001")) is None
    assert auth.insecure_bind(s(admin_listen="0.0.0.0:8001")) is not None
    assert auth.insecure_bind(s(admin_listen="0.0.0.0:8001", admin_token="x")) is None
    assert auth.insecure_bind(s(admin_listen="0.0.0.0:8001",
                                admin_listen_allow_insecure="on")) is None


def test_openapi_documents_every_route_and_nothing_else() -> None:
    node = Supervisor(settings_mod.load(env={}), Config.empty(), None)
    app = create_admin_app(node)
    routes = [r for r in app.routes if isinstance(r, Route)]
    doc = openapi.document(routes)
    implemented = set()
    for route in routes:
        path = re.sub(r"\{([^}:]+):[^}]+\}", r"{\1}", route.path)
        for method in route.methods or ():
            if method != "HEAD":
                implemented.add((path, method.lower()))
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert documented == implemented
    undocumented = [(p, m) for p, ops in doc["paths"].items() for m, op in ops.items()
                    if not op["summary"]]
    assert undocumented == []
