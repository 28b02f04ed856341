"""`POST /config`: Kong's DB-less semantics (reference §5.7) on a running node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from node_support import Node, Upstream, config_doc, service, simple_config, to_yaml

from tollway.config.declarative import validate


def leaves(fields: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(key path, message) for every message in Kong's nested `fields` error table."""
    if isinstance(fields, dict):
        for k, v in fields.items():
            yield from leaves(v, (*path, k))
    elif isinstance(fields, list):
        for i, v in enumerate(fields):
            yield from leaves(v, (*path, i))
    else:
        yield path, str(fields)


def names(path: tuple[Any, ...]) -> list[str]:
    return [p for p in path if isinstance(p, str)]


def assert_serves(node: Node, path: str, upstream_name: str, n: int = 8) -> None:
    for r in node.get_many(path, n):
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
        assert r.json()["upstream"] == upstream_name


def assert_not_routed(node: Node, path: str, n: int = 8) -> None:
    for r in node.get_many(path, n):
        assert r.status_code == 404, f"{path}: {r.status_code} {r.text}"


def post_json_document(node: Node, doc: dict[str, Any]) -> httpx.Response:
    return node.admin("POST", "/config", json=doc)


def post_wrapped_yaml(node: Node, doc: dict[str, Any]) -> httpx.Response:
    return node.admin("POST", "/config", json={"config": to_yaml(doc)})


def post_raw_yaml(node: Node, doc: dict[str, Any]) -> httpx.Response:
    return node.admin("POST", "/config", content=to_yaml(doc).encode(),
                      headers={"content-type": "text/yaml"})


def post_form_field(node: Node, doc: dict[str, Any]) -> httpx.Response:
    return node.admin("POST", "/config", data={"config": to_yaml(doc)})


def post_wrapped_json_text(node: Node, doc: dict[str, Any]) -> httpx.Response:
    return node.admin("POST", "/config", json={"config": json.dumps(doc)})


BODY_FORMS = [post_json_document, post_wrapped_yaml, post_raw_yaml, post_form_field,
              post_wrapped_json_text]


@pytest.mark.parametrize("post", BODY_FORMS, ids=lambda f: f.__name__)
def test_valid_config_is_201_and_next_request_uses_it(node: Node, up2: Upstream,
                                                      post: Any) -> None:
    doc = config_doc(service("svc-new", up2.url, {"route-new": ["/new"]}))
    expected = validate(doc)
    r = post(node, doc)
    assert r.status_code == 201, r.text
    body = r.json()
    # Kong's 201 body: the flattened entities map {entity: {id: entity}}
    assert set(body["services"]) == {s["id"] for s in expected.entities["services"]}
    assert set(body["routes"]) == {s["id"] for s in expected.entities["routes"]}
    assert body["routes"][expected.entities["routes"][0]["id"]]["paths"] == ["/new"]
    # visible to the very next request, whichever worker takes it
    assert_serves(node, "/new", "up2")
    # the whole config was replaced: the old route is gone
    assert_not_routed(node, "/a")
    assert node.status()["configuration_hash"] == expected.hash


BAD_DOC = {
    "_format_version": "3.0",
    "services": [{
        "name": "bad",
        "host": "127.0.0.1",
        "port": 99999,
        "routes": [{"name": "bad-route", "paths": ["no-slash"]}],
    }],
}


@pytest.mark.parametrize("post", [post_json_document, post_raw_yaml, post_wrapped_yaml],
                         ids=lambda f: f.__name__)
def test_invalid_config_is_400_code_14_naming_every_field(node: Node, up1: Upstream,
                                                          post: Any) -> None:
    before = node.status()["configuration_hash"]
    r = post(node, BAD_DOC)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["code"] == 14
    assert body["name"] == "invalid declarative configuration"
    assert body["message"].startswith("declarative config is invalid")
    assert "request_id" not in body
    found = {tuple(names(p)): msg for p, msg in leaves(body["fields"])}
    assert found.get(("services", "port")) == "value should be between 0 and 65535", found
    assert found.get(("services", "routes", "paths")) == (
        "should start with: / (fixed path) or ~/ (regex path)"), found
    # the running config keeps serving, unchanged
    assert node.status()["configuration_hash"] == before
    assert_serves(node, "/a", "up1")


def test_invalid_config_flatten_errors(node: Node) -> None:
    r = node.post_config(BAD_DOC, flatten_errors="1")
    assert r.status_code == 400
    flat = r.json()["flattened_errors"]
    assert isinstance(flat, list) and flat
    fields = {e.get("field") for entry in flat for e in entry["errors"]}
    assert "port" in fields


def test_unparsable_body_is_400_code_14_with_fields_error(node: Node) -> None:
    r = node.admin("POST", "/config", content=b"{{{ not: [yaml",
                   headers={"content-type": "text/yaml"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == 14
    assert isinstance(body["fields"]["error"], str) and body["fields"]["error"]
    assert_serves(node, "/a", "up1", 4)


@pytest.mark.parametrize("kwargs", [
    {"content": b""},
    {"content": b"  \n", "headers": {"content-type": "text/yaml"}},
    {"content": b"", "headers": {"content-type": "application/json"}},
], ids=["no-body", "blank-yaml", "empty-json"])
def test_empty_body_is_400_expected_a_declarative_configuration(node: Node,
                                                                kwargs: Any) -> None:
    r = node.admin("POST", "/config", **kwargs)
    assert r.status_code == 400
    assert r.json() == {"message": "expected a declarative configuration"}
    assert_serves(node, "/a", "up1", 2)


def test_check_hash_with_same_config_is_304(node: Node, up1: Upstream) -> None:
    doc = simple_config(up1.url)
    revision = node.status()["configuration_revision"]
    r = node.admin("POST", "/config", params={"check_hash": "1"},
                   json={"config": to_yaml(doc)})
    assert r.status_code == 304, r.text
    assert r.content == b""
    r = node.admin("POST", "/config?check_hash=1", content=to_yaml(doc).encode(),
                   headers={"content-type": "text/yaml"})
    assert r.status_code == 304, r.text
    assert node.status()["configuration_revision"] == revision
    # a different config with check_hash=1 is applied normally
    other = simple_config(up1.url, "/other", "other")
    r = node.admin("POST", "/config", params={"check_hash": "1"},
                   json={"config": to_yaml(other)})
    assert r.status_code == 201
    assert_serves(node, "/other", "up1", 2)


def test_same_config_without_check_hash_is_201(node: Node, up1: Upstream) -> None:
    r = node.post_config(simple_config(up1.url))
    assert r.status_code == 201
    assert_serves(node, "/a", "up1", 2)


def test_empty_config_clears_routes(node: Node) -> None:
    r = node.post_config({"_format_version": "3.0"})
    assert r.status_code == 201, r.text
    assert node.status()["configuration_hash"] == validate({"_format_version": "3.0"}).hash
    assert_not_routed(node, "/a", 4)


def test_admin_unknown_path_and_method(node: Node) -> None:
    r = node.admin("GET", "/nope")
    assert r.status_code == 404
    assert r.json() == {"message": "Not found"}
    r = node.admin("DELETE", "/config")
    assert r.status_code == 405
    assert r.json() == {"message": "Method not allowed"}


def test_check_hash_does_not_apply_to_a_decoded_json_document(node: Node,
                                                              up1: Upstream) -> None:
    # Kong §5.7: check_hash compares the md5 of the submitted *text*; a config sent as the
    # JSON document itself is always loaded (201), even when identical.
    r = node.post_config(simple_config(up1.url), check_hash="1")
    assert r.status_code == 201, r.text
    assert_serves(node, "/a", "up1", 2)
