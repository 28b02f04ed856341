"""Request and response bodies: Content-Length, chunked both ways, close-delimited
responses, Expect: 100-continue, HEAD, 204/304."""

from __future__ import annotations

import os

from dataplane_helpers import (
    build_request,
    chunked,
    close_delimited,
    echo_body,
    respond,
    service_doc,
)


def test_content_length_request_body(make_upstream, make_gateway, make_client):
    up = make_upstream(echo_body)
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    body = os.urandom(200_000)
    resp = c.request("POST", "/cl", body=body)
    assert resp.status == 200
    assert resp.body == body
    req = up.requests[0]
    assert req.header("content-length") == str(len(body))
    assert req.header("transfer-encoding") is None
    assert req.body == body


def test_chunked_request_body(make_upstream, make_gateway, make_client):
    up = make_upstream(echo_body)
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    parts = [b"hello", b" ", os.urandom(70_000), b"world"]
    raw = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\nX-T: 1\r\n\r\n"
    c.send(build_request("POST", "/chunked", [("Transfer-Encoding", "chunked")]) + raw)
    resp = c.read_response()
    assert resp.status == 200
    assert resp.body == b"".join(parts)
    req = up.requests[0]
    assert req.chunked
    assert req.all("transfer-encoding") == ["chunked"]
    assert req.header("content-length") is None
    assert req.body == b"".join(parts)
    # still in sync for the next request on both sides
    assert c.request("GET", "/after").status == 200
    assert up.connections == 1


def test_chunked_request_body_sent_slowly(make_upstream, make_gateway, make_client):
    """Chunks arriving in separate packets (and split inside the framing) are re-framed."""
    import time
    up = make_upstream(echo_body)
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    c.send(build_request("POST", "/slow", [("Transfer-Encoding", "chunked")]))
    for piece in (b"3\r", b"\nabc", b"\r\n", b"4\r\ndefg\r\n", b"0\r\n", b"\r\n"):
        c.send(piece)
        time.sleep(0.02)  # separate packets; not an assertion
    resp = c.read_response()
    assert resp.status == 200
    assert resp.body == b"abcdefg"
    assert up.requests[0].body == b"abcdefg"


def test_chunked_response_rechunked(make_upstream, make_gateway, make_client):
    parts = [b"first-", os.urandom(100_000), b"-last"]
    up = make_upstream(chunked(parts))
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    resp = c.request("GET", "/")
    assert resp.status == 200
    assert resp.chunked
    assert resp.header("content-length") is None
    assert resp.body == b"".join(parts)
    assert c.request("GET", "/again").body == b"".join(parts)
    assert up.connections == 1


def test_close_delimited_response_rechunked(make_upstream, make_gateway, make_client):
    body = os.urandom(150_000)
    up = make_upstream(close_delimited(body))
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    resp = c.request("GET", "/")
    assert resp.status == 200
    assert resp.chunked, "an HTTP/1.1 client gets the close-delimited body chunked"
    assert resp.body == body
    # the client connection survives (the upstream's close is not the client's)
    resp2 = c.request("GET", "/2")
    assert resp2.body == body
    assert up.connections == 2


def test_expect_100_continue(make_upstream, make_gateway, make_client):
    up = make_upstream(echo_body)
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    c.send(build_request("PUT", "/upload", [("Expect", "100-continue"),
                                            ("Content-Length", "11")]))
    status, *_ = c.read_head()
    assert status == 100, "the client must be told to continue before it sends the body"
    c.send(b"hello world")
    resp = c.read_response("PUT")
    assert resp.status == 200
    assert resp.body == b"hello world"
    assert up.requests[0].body == b"hello world"


def test_expect_100_continue_local_reply_skips_continue(make_gateway, make_client):
    """A request answered locally (no route) gets the final response, not 100 Continue."""
    gw = make_gateway({"_format_version": "3.0"})
    c = make_client(gw.port)
    c.send(build_request("PUT", "/upload", [("Expect", "100-continue"),
                                            ("Content-Length", "5")]))
    resp = c.read_response("PUT")
    assert resp.interim == []
    assert resp.status == 404


def test_head_response_with_content_length(make_upstream, make_gateway, make_client):
    async def head(conn, req):
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: x/y\r\n\r\n")

    up = make_upstream(head)
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    resp = c.request("HEAD", "/h")
    assert resp.status == 200
    assert resp.header("content-length") == "1234"
    assert resp.header("transfer-encoding") is None
    assert up.requests[0].method == "HEAD"
    # nothing follows the head: the next response parses cleanly, on the same connections
    up.behaviour = respond(200, b"after")
    resp = c.request("GET", "/g")
    assert resp.body == b"after"
    assert up.connections == 1


def test_head_response_chunked(make_upstream, make_gateway, make_client):
    async def head(conn, req):
        await conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")

    up = make_upstream(head)
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    resp = c.request("HEAD", "/h")
    assert resp.status == 200
    up.behaviour = respond(200, b"after")
    assert c.request("GET", "/g").body == b"after"


def test_204_without_body(make_upstream, make_gateway, make_client):
    up = make_upstream(respond(204, b"", reason="No Content"))

    async def no_content(conn, req):
        await conn.send(b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n")

    up.behaviour = no_content
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    resp = c.request("DELETE", "/thing")
    assert resp.status == 204
    assert resp.header("transfer-encoding") is None
    assert resp.header("content-length") in (None, "0")
    up.behaviour = respond(200, b"after")
    assert c.request("GET", "/g").body == b"after", "no stray bytes after a 204"
    assert up.connections == 1


def test_304_without_body(make_upstream, make_gateway, make_client):
    async def not_modified(conn, req):
        await conn.send(b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n")

    up = make_upstream(not_modified)
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    resp = c.request("GET", "/c", [("If-None-Match", '"v1"')])
    assert resp.status == 304
    assert resp.header("etag") == '"v1"'
    assert resp.header("transfer-encoding") is None
    up.behaviour = respond(200, b"after")
    assert c.request("GET", "/g").body == b"after"
    assert up.requests[0].header("if-none-match") == '"v1"'


def test_empty_content_length_zero_response(make_upstream, make_gateway, make_client):
    up = make_upstream(respond(200, b""))
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    resp = c.request("GET", "/")
    assert resp.header("content-length") == "0"
    assert resp.body == b""
    assert c.request("GET", "/").status == 200


def test_interim_103_from_upstream_not_breaking_response(make_upstream, make_gateway,
                                                        make_client):
    async def early_hints(conn, req):
        await conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
                        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody")

    up = make_upstream(early_hints)
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    resp = c.request("GET", "/")
    assert resp.status == 200
    assert resp.body == b"body"


def _head_then_body_later(chunked_body: bool):
    """The upstream sends its head at once and the body 1.5 s later."""
    import asyncio

    async def b(conn, req) -> None:
        if chunked_body:
            await conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            await asyncio.sleep(1.5)
            await conn.send(b"5\r\nlater\r\n0\r\n\r\n")
        else:
            await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
            await asyncio.sleep(1.5)
            await conn.send(b"later")
    return b


def test_response_head_is_not_held_back_by_a_slow_body(make_upstream, make_gateway,
                                                       make_client):
    """The head waits for body bytes of the same read only (one writev): a body that comes
    later must not delay the head, with Content-Length or chunked framing."""
    import time

    for chunked_body in (False, True):
        up = make_upstream(_head_then_body_later(chunked_body))
        gw = make_gateway(service_doc(up.url))
        c = make_client(gw.port, timeout=1.0)  # under the upstream's 1.5 s pause
        t0 = time.monotonic()
        c.send(build_request("GET", "/slow-body"))
        head = c.read_until(b"\r\n\r\n")
        assert time.monotonic() - t0 < 1.0
        assert head.startswith(b"HTTP/1.1 200 ")
        c.sock.settimeout(5.0)
        resp_rest = c.read_until(b"0\r\n\r\n") if chunked_body else c.read_exactly(5)
        assert b"later" in resp_rest
        assert c.request("GET", "/next").status == 200
