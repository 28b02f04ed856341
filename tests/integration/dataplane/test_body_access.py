"""Request-body access for plugins (buffer_request_body, req.body, req.set_body), the
per-request body limit (req.limit_body), req.set_method, req.exit with repeated headers,
req.exit_raw, the body phase on local replies, and the access log's correlation_id."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dataplane_helpers import (
    build_request,
    echo_body,
    json_error,
    reset,
    respond,
    sequence,
)

from tollway.config.schema import Record
from tollway.plugins import registry
from tollway.plugins.base import Plugin


class SeeBody(Plugin):
    """Reports what it saw; `replace:<x>` bodies are replaced by `<x>` upstream."""

    name = "test-see-body"
    priority = 1000
    config_schema = Record(fields={})
    buffer_request_body = True

    def access(self, req: Any) -> None:
        body = req.body
        req.set_response_header("X-Seen-Length", str(len(body)))
        req.set_header("X-Seen-Body", body[:64])
        if body.startswith(b"replace:"):
            req.set_body(body[len(b"replace:"):])


class SmallBody(SeeBody):
    name = "test-small-body"
    request_body_limit = 10


class Streaming(Plugin):
    """An access plugin that does not want the body: the route keeps streaming."""

    name = "test-streaming"
    priority = 900
    config_schema = Record(fields={})

    def access(self, req: Any) -> None:
        req.set_header("X-Body-Visible", "no" if req.body is None else "yes")


class Limit(Plugin):
    name = "test-limit"
    priority = 900
    config_schema = Record(fields={})

    def access(self, req: Any) -> None:
        req.limit_body(10, 413, "too big")


class Method(Plugin):
    name = "test-method"
    priority = 900
    config_schema = Record(fields={})

    def access(self, req: Any) -> None:
        req.set_method("post")
        req.set_header("X-Original-Method", req.original_method)


class Exits(Plugin):
    name = "test-exits"
    priority = 900
    config_schema = Record(fields={})

    def access(self, req: Any) -> None:
        if req.path == "/exit":
            req.exit(200, "x", {"Set-Cookie": ["a=1", "b=2"], "X-One": "1"})
        elif req.path == "/raw":
            req.set_response_header("X-Early", "kept")
            req.set_response_header("X-A", "overridden")
            req.exit_raw(203, [(b"X-A", b"1"), (b"x-a", b"2"), (b"Content-Type", b"text/weird"),
                               (b"Content-Length", b"999"), (b"Connection", b"close")],
                         b"raw")


class Shout(Plugin):
    """A body phase: upper-cases every response body, local replies included."""

    name = "test-shout"
    priority = 10
    config_schema = Record(fields={})

    def body(self, req: Any, chunk: bytes, last: bool) -> bytes:
        return chunk.upper()


PLUGINS: list[type[Plugin]] = [SeeBody, SmallBody, Streaming, Limit, Method, Exits, Shout]


@pytest.fixture(autouse=True)
def _plugins() -> Iterator[None]:
    for cls in PLUGINS:
        registry.register(cls)
    yield
    for cls in PLUGINS:
        registry.unregister(cls.name)


def doc(url: str, *names: str, **svc: Any) -> dict[str, Any]:
    return {"_format_version": "3.0",
            "services": [{"name": "svc", "url": url, **svc, "routes": [
                {"name": "r", "paths": ["/"], "plugins": [{"name": n} for n in names]},
                {"name": "plain", "paths": ["/plain"]}]}]}


def framed(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)


def chunks(*parts: bytes) -> bytes:
    return framed(*parts) + b"0\r\n\r\n"


def test_content_length_body_is_seen_and_forwarded(make_upstream, make_gateway, make_client):
    up = make_upstream(echo_body)
    gw = make_gateway(doc(up.url, "test-see-body"))
    body = os.urandom(300_000)  # over the 256 KiB mark where streamed bodies pause reading
    resp = make_client(gw.port).request("POST", "/", body=body)
    assert resp.status == 200
    assert resp.header("X-Seen-Length") == str(len(body))
    req = up.requests[0]
    assert req.body == body
    assert req.header("content-length") == str(len(body)) and not req.chunked


def test_chunked_body_is_buffered_and_sent_with_content_length(make_upstream, make_gateway,
                                                               make_client):
    up = make_upstream(echo_body)
    gw = make_gateway(doc(up.url, "test-see-body"))
    c = make_client(gw.port)
    c.send(build_request("POST", "/", [("Transfer-Encoding", "chunked")]))
    c.send(framed(b"hello", b" "))
    c.send(framed(b"world"))  # the body arrives in several packets
    c.send(b"0\r\n\r\n")
    resp = c.read_response()
    assert resp.status == 200
    assert resp.header("X-Seen-Length") == "11"
    req = up.requests[0]
    assert (req.body, req.chunked, req.header("content-length")) == (b"hello world", False, "11")
    assert req.header("transfer-encoding") is None
    assert req.header("x-seen-body") == "hello world"


def test_route_without_body_plugins_keeps_streaming(make_upstream, make_gateway, make_client):
    up = make_upstream(echo_body)
    gw = make_gateway(doc(up.url, "test-streaming"))
    c = make_client(gw.port)
    c.send(build_request("POST", "/", [("Transfer-Encoding", "chunked")]) + chunks(b"abc"))
    resp = c.read_response()
    assert resp.status == 200 and resp.body == b"abc"
    req = up.requests[0]
    assert req.chunked and req.header("x-body-visible") == "no"


def test_bodiless_request_on_buffering_route(make_upstream, make_gateway, make_client):
    up = make_upstream(echo_body)
    gw = make_gateway(doc(up.url, "test-see-body"))
    resp = make_client(gw.port).request("GET", "/")
    assert resp.status == 200 and resp.header("X-Seen-Length") == "0"
    assert up.requests[0].header("content-length") is None


def test_expect_100_continue_sent_when_buffering_starts(make_upstream, make_gateway,
                                                        make_client):
    up = make_upstream(echo_body)
    gw = make_gateway(doc(up.url, "test-see-body"))
    c = make_client(gw.port)
    c.send(build_request("POST", "/", [("Expect", "100-continue"), ("Content-Length", "5")]))
    # nothing reached the upstream yet: the gateway asks for the body itself
    assert c.read_until(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert up.requests == []
    c.send(b"hello")
    resp = c.read_response()
    assert resp.status == 200 and resp.body == b"hello"
    assert up.requests[0].header("expect") is None


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_over_the_buffer_limit_is_413(make_upstream, make_gateway, make_client,
                                           framing: str) -> None:
    up = make_upstream(echo_body)
    gw = make_gateway(doc(up.url, "test-small-body"))
    c = make_client(gw.port)
    if framing == "chunked":
        c.send(build_request("POST", "/", [("Transfer-Encoding", "chunked")])
               + chunks(b"12345", b"678901"))
    else:
        c.send(build_request("POST", "/", body=b"12345678901"))
    resp = c.read_response()
    assert resp.status == 413
    assert resp.body.startswith(b"Payload too large\nrequest_id: ")
    assert resp.header("connection") == "close"
    assert up.requests == []


def test_body_at_the_limit_passes(make_upstream, make_gateway, make_client):
    up = make_upstream(echo_body)
    gw = make_gateway(doc(up.url, "test-small-body"))
    resp = make_client(gw.port).request("POST", "/", body=b"1234567890")
    assert resp.status == 200 and resp.body == b"1234567890"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_set_body_reaches_upstream_with_content_length(make_upstream, make_gateway,
                                                       make_client, framing: str) -> None:
    up = make_upstream(echo_body)
    gw = make_gateway(doc(up.url, "test-see-body"))
    c = make_client(gw.port)
    if framing == "chunked":
        c.send(build_request("POST", "/", [("Transfer-Encoding", "chunked")])
               + chunks(b"replace:", b"new body!"))
    else:
        c.send(build_request("POST", "/", body=b"replace:new body!"))
    resp = c.read_response()
    assert resp.status == 200 and resp.body == b"new body!"
    req = up.requests[0]
    assert (req.header("content-length"), req.chunked) == ("9", False)
    assert req.raw.endswith(b"\r\n\r\nnew body!")
    # keep-alive still works after a replaced body
    assert c.request("POST", "/", body=b"again").body == b"again"


def test_retry_resends_the_buffered_body(make_upstream, make_gateway, make_client):
    up = make_upstream(sequence(reset, respond(201, b"made")))
    gw = make_gateway(doc(up.url, "test-see-body", retries=2))
    body = b"replace:" + b"z" * (2 << 20)  # over the 1 MiB replay limit of streamed bodies
    resp = make_client(gw.port).request("PUT", "/", body=body)
    assert resp.status == 201
    assert [(r.method, r.body == body[8:]) for r in up.requests] == [("PUT", True)] * 2


def test_pipelined_request_body_read_before_its_turn(make_upstream, make_gateway, make_client):
    up = make_upstream(echo_body)
    gw = make_gateway(doc(up.url, "test-see-body"))
    c = make_client(gw.port)
    c.send(build_request("POST", "/", body=b"first")
           + build_request("POST", "/", [("Transfer-Encoding", "chunked")])
           + chunks(b"sec", b"ond"))
    assert c.read_response().body == b"first"
    second = c.read_response()
    assert (second.body, second.header("X-Seen-Length")) == (b"second", "6")


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_limit_body_while_streaming(make_upstream, make_gateway, make_client,
                                    framing: str) -> None:
    up = make_upstream(echo_body)
    gw = make_gateway(doc(up.url, "test-limit"))
    c = make_client(gw.port)
    if framing == "chunked":
        c.send(build_request("POST", "/", [("Transfer-Encoding", "chunked")]) + framed(b"123456"))
        c.send(chunks(b"78901"))
    else:
        c.send(build_request("POST", "/", body=b"12345678901"))
    resp = c.read_response()
    assert resp.status == 413
    assert json_error("too big").fullmatch(resp.text)
    assert resp.header("connection") == "close"


def test_limit_body_under_the_limit_streams(make_upstream, make_gateway, make_client):
    up = make_upstream(echo_body)
    gw = make_gateway(doc(up.url, "test-limit"))
    c = make_client(gw.port)
    c.send(build_request("POST", "/", [("Transfer-Encoding", "chunked")]) + chunks(b"12345"))
    resp = c.read_response()
    assert resp.status == 200 and resp.body == b"12345" and up.requests[0].chunked


def test_set_method(make_upstream, make_gateway, make_client):
    up = make_upstream(echo_body)
    gw = make_gateway(doc(up.url, "test-method"))
    resp = make_client(gw.port).request("GET", "/")
    assert resp.status == 200
    assert up.requests[0].method == "POST"
    assert up.requests[0].header("x-original-method") == "GET"


def test_exit_sends_every_value_of_a_list_header(make_upstream, make_gateway, make_client):
    up = make_upstream(echo_body)
    gw = make_gateway(doc(up.url, "test-exits"))
    resp = make_client(gw.port).request("GET", "/exit")
    assert resp.status == 200 and resp.body == b"x"
    assert resp.all("Set-Cookie") == ["a=1", "b=2"]
    assert resp.all("X-One") == ["1"]


def test_exit_raw_sends_the_headers_as_given(make_upstream, make_gateway, make_client):
    up = make_upstream(echo_body)
    gw = make_gateway(doc(up.url, "test-exits"))
    c = make_client(gw.port)
    resp = c.request("GET", "/raw")
    assert (resp.status, resp.body) == (203, b"raw")
    names = [n for n, _ in resp.headers]
    assert names[:3] == ["X-A", "x-a", "Content-Type"]
    assert resp.all("x-a") == ["1", "2"]
    assert resp.header("Content-Type") == "text/weird"
    assert resp.all("Content-Length") == ["3"]
    assert resp.header("X-Early") == "kept"
    assert resp.header("Date") and resp.header("Server").startswith("tollway/")
    assert resp.header("Connection") is None  # the given Connection is not replayed
    assert c.request("GET", "/raw").status == 203  # still keep-alive
    assert up.requests == []


def test_body_phase_runs_on_local_replies(make_upstream, make_gateway, make_client):
    up = make_upstream(respond(200, b"from upstream"))
    gw = make_gateway(doc(up.url, "test-exits", "test-shout"))
    c = make_client(gw.port)
    resp = c.request("GET", "/exit")
    assert resp.body == b"X" and resp.header("Content-Length") == "1"
    assert c.request("GET", "/raw").body == b"RAW"
    assert c.request("GET", "/").body == b"FROM UPSTREAM"


def test_access_log_has_the_correlation_id(make_upstream, make_gateway, make_client,
                                           tmp_path: Path) -> None:
    up = make_upstream(echo_body)
    log_path = tmp_path / "access.log"
    document = doc(up.url)
    document["plugins"] = [{"name": "correlation-id", "config": {"header_name": "X-Cid"}}]
    gw = make_gateway(document, proxy_access_log=str(log_path))
    c = make_client(gw.port)
    assert c.request("GET", "/", [("X-Cid", "abc-123")]).status == 200
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (log_path.exists() and log_path.read_text()):
        time.sleep(0.02)
    entry = json.loads(log_path.read_text().splitlines()[0])
    assert entry["correlation_id"] == "abc-123"

