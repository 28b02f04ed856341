"""request-transformer body operations (§3.10) on form-urlencoded, JSON and multipart bodies,
through real sockets: the body and framing the upstream receives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dataplane_helpers import build_request, echo_body

FORM = "application/x-www-form-urlencoded"
OPS = {
    "remove": {"body": ["gone"]},
    "rename": {"body": ["old:new"]},
    "replace": {"body": ["rep:replaced", "absent:nope"]},
    "add": {"body": ["added:a", "keep:not-used"]},
    "append": {"body": ["app:two"]},
}


def doc(url: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"_format_version": "3.0",
            "services": [{"name": "svc", "url": url, "routes": [{"name": "r", "paths": ["/"]}]}],
            "plugins": [{"name": "request-transformer", "config": config}]}


def send(make_upstream: Any, make_gateway: Any, make_client: Any, config: dict[str, Any],
         ctype: str | None, body: bytes, chunked: bool = False, method: str = "POST") -> Any:
    up = make_upstream(echo_body)
    gw = make_gateway(doc(up.url, config))
    c = make_client(gw.port)
    headers = [("Content-Type", ctype)] if ctype else []
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
    c.send(build_request(method, "/", headers, body))
    resp = c.read_response()
    assert resp.status == 200, resp.body
    req = up.requests[0]
    assert req.header("content-length") == str(len(req.body)) and not req.chunked
    return req


def test_form_body_operations(make_upstream: Any, make_gateway: Any, make_client: Any) -> None:
    req = send(make_upstream, make_gateway, make_client, OPS, FORM,
               b"gone=1&old=o&rep=r&keep=k&app=one&z=%20x", chunked=True)
    assert req.body == b"added=a&app=one&app=two&keep=k&new=o&rep=replaced&z=%20x"


def test_json_body_operations(make_upstream: Any, make_gateway: Any, make_client: Any) -> None:
    req = send(make_upstream, make_gateway, make_client, OPS, "application/json",
               b'{"gone":1,"old":{"x":1},"rep":2,"keep":true,"app":"one","url":"a/b"}')
    doc = json.loads(req.body)
    assert doc == {"new": {"x": 1}, "rep": "replaced", "keep": True, "app": ["one", "two"],
                   "url": "a/b", "added": "a"}
    assert b'"a\\/b"' in req.body  # lua-cjson escapes "/"


def test_multipart_body_operations(make_upstream: Any, make_gateway: Any,
                                   make_client: Any) -> None:
    b = "BnD"
    parts = "".join(f'--{b}\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n'
                    for n, v in [("gone", "1"), ("old", "o"), ("rep", "r"), ("keep", "k")])
    body = (parts + f"--{b}--\r\n").encode()
    req = send(make_upstream, make_gateway, make_client, OPS,
               f"multipart/form-data; boundary={b}", body)
    expected = "".join(
        f'--{b}\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n'
        for n, v in [("new", "o"), ("keep", "k"), ("rep", "replaced"), ("added", "a")])
    assert req.body == (expected + f"--{b}--\r\n").encode()


def test_add_creates_a_body_for_an_empty_form(make_upstream: Any, make_gateway: Any,
                                              make_client: Any) -> None:
    req = send(make_upstream, make_gateway, make_client, {"add": {"body": ["k:v"]}}, FORM, b"")
    assert req.body == b"k=v"


@pytest.mark.parametrize(("ctype", "body"), [
    ("text/plain", b"gone=1"),
    ("application/json", b"{not json"),
    (None, b"gone=1"),
])
def test_other_or_unreadable_bodies_pass_unchanged(make_upstream: Any, make_gateway: Any,
                                                   make_client: Any, ctype: str | None,
                                                   body: bytes) -> None:
    req = send(make_upstream, make_gateway, make_client, OPS, ctype, body)
    assert req.body == body


def test_nothing_to_change_keeps_the_body_bytes(make_upstream: Any, make_gateway: Any,
                                                make_client: Any) -> None:
    req = send(make_upstream, make_gateway, make_client, {"remove": {"body": ["absent"]}}, FORM,
               b"b=2&a=1")
    assert req.body == b"b=2&a=1"


def test_without_body_config_the_body_streams(make_upstream: Any, make_gateway: Any,
                                              make_client: Any) -> None:
    up = make_upstream(echo_body)
    gw = make_gateway(doc(up.url, {"add": {"headers": ["x-a:1"]}}))
    c = make_client(gw.port)
    c.send(build_request("POST", "/", [("Transfer-Encoding", "chunked")])
           + b"3\r\nabc\r\n0\r\n\r\n")
    assert c.read_response().status == 200
    assert up.requests[0].chunked and up.requests[0].body == b"abc"


def test_http_method_keeps_the_original(make_upstream: Any, make_gateway: Any,
                                        make_client: Any) -> None:
    req = send(make_upstream, make_gateway, make_client,
               {"http_method": "PUT", "add": {"body": ["k:v"]}}, FORM, b"a=1")
    assert (req.method, req.body) == ("PUT", b"a=1&k=v")
