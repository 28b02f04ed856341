"""Downstream keep-alive and pipelining, upstream keep-alive pools, HTTP/1.0 clients."""

from __future__ import annotations

import httpx
import pytest
from dataplane_helpers import build_request, chunked, respond, service_doc


def test_upstream_connection_reused_for_sequential_requests(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url))
    c = make_client(gw.port)
    for i in range(5):
        resp = c.request("GET", f"/seq/{i}")
        assert resp.status == 200
        assert resp.body == f"/seq/{i}".encode()
    assert upstream.paths() == [f"/seq/{i}" for i in range(5)]
    assert upstream.connections == 1, "the upstream keep-alive pool must reuse the connection"


def test_upstream_pool_shared_across_client_connections(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url))
    for i in range(4):
        c = make_client(gw.port)
        assert c.request("GET", f"/c{i}").status == 200
        c.close()
    assert upstream.connections == 1


def test_downstream_keep_alive_with_httpx(upstream, make_gateway):
    gw = make_gateway(service_doc(upstream.url))
    with httpx.Client(base_url=gw.url) as client:
        bodies = [client.get(f"/k{i}").text for i in range(10)]
        assert bodies == [f"/k{i}" for i in range(10)]
        assert gw.state.stats_accepted == 1, "httpx should have reused one client connection"
    assert upstream.connections == 1


def test_pipelined_requests_answered_in_order(make_upstream, make_gateway, make_client):
    up = make_upstream()
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    c.send(build_request("GET", "/p1") + build_request("POST", "/p2", body=b"body-two")
           + build_request("GET", "/p3"))
    bodies = [c.read_response().body for _ in range(3)]
    assert bodies == [b"/p1", b"/p2", b"/p3"]
    assert up.paths() == ["/p1", "/p2", "/p3"]
    assert up.requests[1].body == b"body-two"
    # still usable afterwards
    assert c.request("GET", "/p4").body == b"/p4"


def test_pipelined_requests_in_order_when_first_is_slow(make_upstream, make_gateway,
                                                         make_client):
    """Ordering must not depend on upstream speed: the first answer is the slowest."""
    from dataplane_helpers import echo_path, slow

    async def behaviour(conn, req):
        await (slow(0.3) if req.target == "/slow" else echo_path)(conn, req)

    up = make_upstream(behaviour)
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    c.send(build_request("GET", "/slow") + build_request("GET", "/fast1")
           + build_request("GET", "/fast2"))
    assert [c.read_response().body for _ in range(3)] == [b"/slow", b"/fast1", b"/fast2"]


def test_pipelined_requests_with_half_close(make_upstream, make_gateway, make_client):
    """A client may shut down its sending side after its last pipelined request; every
    response must still be delivered before the server closes."""
    up = make_upstream()
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    import socket
    c.send(build_request("GET", "/h1") + build_request("GET", "/h2"))
    c.sock.shutdown(socket.SHUT_WR)
    assert [c.read_response().body for _ in range(2)] == [b"/h1", b"/h2"]
    assert c.closed_by_peer()


def test_http10_client_gets_response_and_close(make_upstream, make_gateway, make_client):
    up = make_upstream()
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    c.send(build_request("GET", "/old", version="HTTP/1.0"))
    resp = c.read_response()
    assert resp.status == 200
    assert resp.body == b"/old"
    assert resp.header("transfer-encoding") is None
    assert c.closed_by_peer(), "an HTTP/1.0 request without keep-alive ends the connection"
    # the upstream is still spoken to in HTTP/1.1 with keep-alive
    assert up.requests[0].version == "HTTP/1.1"


def test_http10_client_chunked_upstream_response_is_close_delimited(make_upstream,
                                                                    make_gateway, make_client):
    up = make_upstream(chunked([b"hello ", b"world"]))
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    c.send(build_request("GET", "/", version="HTTP/1.0"))
    resp = c.read_response()
    assert resp.status == 200
    assert resp.header("transfer-encoding") is None, "HTTP/1.0 clients cannot read chunked"
    assert resp.body == b"hello world"
    assert c.eof


def test_http10_keep_alive(make_upstream, make_gateway, make_client):
    up = make_upstream(respond(200, b"hi"))
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    for _ in range(2):
        c.send(build_request("GET", "/", [("Connection", "keep-alive")], version="HTTP/1.0"))
        resp = c.read_response()
        assert resp.status == 200
        assert resp.body == b"hi"
        assert resp.header("connection", ) == "keep-alive"
    assert not c.eof
    assert gw.state.stats_accepted == 1


def test_connection_close_from_client_honoured(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url))
    c = make_client(gw.port)
    resp = c.request("GET", "/bye", [("Connection", "close")])
    assert resp.status == 200
    assert resp.header("connection") == "close"
    assert c.closed_by_peer()
    # the client's Connection: close is hop-by-hop: the upstream connection stays pooled
    assert upstream.requests[0].header("connection") == "keep-alive"


# The HTTP version is read from httptools only when keep-alive does not settle it (see
# Exchange.__init__): each of these must still get its version's framing. A chunked upstream
# response is re-chunked for HTTP/1.1 only; HTTP/1.0, 0.9 and 2.0 clients get it
# close-delimited.
@pytest.mark.parametrize(("version", "headers", "http11", "keep_alive"), [
    ("HTTP/1.1", [], True, True),
    ("HTTP/1.1", [("Connection", "keep-alive")], True, True),
    ("HTTP/1.1", [("Connection", "close")], True, False),
    ("HTTP/1.1", [("Proxy-Connection", "close")], True, False),
    ("HTTP/1.0", [], False, False),
    ("HTTP/1.0", [("Connection", "keep-alive")], False, True),
    ("HTTP/1.0", [("Proxy-Connection", "keep-alive")], False, True),
    ("HTTP/2.0", [("Connection", "keep-alive")], False, True),
    ("HTTP/0.9", [("Connection", "keep-alive")], False, True),
])
def test_http_version_decides_framing(make_upstream, make_gateway, make_client, version,
                                      headers, http11, keep_alive):
    up = make_upstream(chunked([b"hello ", b"world"]))
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    c.send(build_request("GET", "/", headers, version=version))
    resp = c.read_response()
    assert resp.status == 200 and resp.body == b"hello world"
    assert (resp.header("transfer-encoding") == "chunked") is http11
    if http11:
        assert resp.header("connection") == (None if keep_alive else "close")
    else:  # the close ends the body
        assert resp.header("connection") == "close"
        assert c.closed_by_peer()


@pytest.mark.parametrize(("version", "headers", "connection"), [
    ("HTTP/1.1", [], None),
    ("HTTP/1.0", [("Connection", "keep-alive")], "keep-alive"),
    ("HTTP/1.0", [("Proxy-Connection", "keep-alive")], "keep-alive"),
    ("HTTP/2.0", [("Connection", "keep-alive")], "keep-alive"),
    ("HTTP/1.0", [], "close"),
])
def test_http_version_decides_connection_header(make_upstream, make_gateway, make_client,
                                                version, headers, connection):
    up = make_upstream(respond(200, b"hi"))
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    for _ in range(1 if connection == "close" else 2):
        c.send(build_request("GET", "/", headers, version=version))
        resp = c.read_response()
        assert resp.status == 200 and resp.body == b"hi"
        assert resp.header("connection") == connection
