"""response-transformer through real sockets: headers, and JSON bodies re-framed chunked."""

from __future__ import annotations

import json
from typing import Any

from dataplane_helpers import chunked, respond


def doc(url: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "_format_version": "3.0",
        "services": [{"name": "svc", "url": url, "routes": [{"name": "r", "paths": ["/"]}]}],
        "plugins": [{"name": "response-transformer", "config": config}],
    }


JSON_HEADERS = [("Content-Type", "application/json; charset=utf-8")]


def test_header_operations(make_upstream: Any, make_gateway: Any, make_client: Any) -> None:
    up = make_upstream(respond(200, b"ok", [
        ("Content-Type", "text/plain"), ("X-Gone", "1"), ("X-Old", "o"), ("X-Rep", "r"),
        ("X-Keep", "k"), ("X-App", "one")]))
    gw = make_gateway(doc(up.url, {
        "remove": {"headers": ["x-gone"]},
        "rename": {"headers": ["x-old:x-new"]},
        "replace": {"headers": ["x-rep:replaced", "x-none:nope"]},
        "add": {"headers": ["x-add:added", "x-keep:no"]},
        "append": {"headers": ["x-app:two"]},
    }))
    resp = make_client(gw.port).request()
    assert resp.status == 200 and resp.body == b"ok"
    assert resp.header("x-gone") is None
    assert resp.header("x-old") is None and resp.header("x-new") == "o"
    assert resp.header("x-rep") == "replaced" and resp.header("x-none") is None
    assert resp.header("x-add") == "added" and resp.header("x-keep") == "k"
    assert resp.all("x-app") == ["one", "two"]
    assert resp.header("content-length") == "2"  # no body transform: length kept


def test_json_body_transform_is_chunked(make_upstream: Any, make_gateway: Any,
                                        make_client: Any) -> None:
    body = json.dumps({"drop": 1, "old": "v", "rep": "x", "keep": "k", "list": ["a"],
                       "url": "http://a/b"}).encode()
    up = make_upstream(respond(200, body, JSON_HEADERS))
    gw = make_gateway(doc(up.url, {
        "remove": {"json": ["drop"]},
        "rename": {"json": ["old:new"]},
        "replace": {"json": ["rep:5", "absent:1"], "json_types": ["number", "number"]},
        "add": {"json": ["added:true", "keep:no"], "json_types": ["boolean"]},
        "append": {"json": ["list:b", "fresh:c"]},
    }))
    client = make_client(gw.port)
    resp = client.request()
    assert resp.status == 200
    assert resp.chunked and resp.header("content-length") is None
    assert json.loads(resp.body) == {"new": "v", "rep": 5, "keep": "k", "list": ["a", "b"],
                                     "url": "http://a/b", "added": True, "fresh": ["c"]}
    assert b"http:\\/\\/a\\/b" in resp.body  # encoded as cjson does
    # the connection stays usable: the framing was right
    again = client.request()
    assert again.status == 200 and json.loads(again.body)["rep"] == 5


def test_json_body_from_chunked_upstream(make_upstream: Any, make_gateway: Any,
                                         make_client: Any) -> None:
    up = make_upstream(chunked([b'{"a":', b'1,"b"', b':2}'], [("Content-Type",
                                                              "application/json")]))
    gw = make_gateway(doc(up.url, {"remove": {"json": ["a"]}}))
    resp = make_client(gw.port).request()
    assert resp.status == 200 and json.loads(resp.body) == {"b": 2}


def test_non_json_body_untouched(make_upstream: Any, make_gateway: Any,
                                 make_client: Any) -> None:
    up = make_upstream(respond(200, b'{"a":1}', [("Content-Type", "text/plain")]))
    gw = make_gateway(doc(up.url, {"remove": {"json": ["a"]}}))
    resp = make_client(gw.port).request()
    assert resp.body == b'{"a":1}' and resp.header("content-length") == "7"


def test_invalid_json_passes_through(make_upstream: Any, make_gateway: Any,
                                     make_client: Any) -> None:
    up = make_upstream(respond(200, b"{not json", JSON_HEADERS))
    gw = make_gateway(doc(up.url, {"add": {"json": ["a:1"]}}))
    resp = make_client(gw.port).request()
    assert resp.status == 200 and resp.body == b"{not json"


def test_http10_client_gets_close_delimited_body(make_upstream: Any, make_gateway: Any,
                                                 make_client: Any) -> None:
    from dataplane_helpers import build_request
    up = make_upstream(respond(200, b'{"a":1}', JSON_HEADERS))
    gw = make_gateway(doc(up.url, {"add": {"json": ["b:2"]}}))
    client = make_client(gw.port)
    client.send(build_request("GET", "/", version="HTTP/1.0"))
    raw = client.read_to_eof()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Content-Length" not in head and b"chunked" not in head
    assert json.loads(body) == {"a": 1, "b": "2"}
