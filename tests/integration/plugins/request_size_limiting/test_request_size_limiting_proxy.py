"""request-size-limiting through a real gateway (Kong §3.8)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dataplane_helpers import Gateway, RawClient, Upstream, build_request, echo_body, json_error
from edge_plugins_support import service

Make = Callable[..., Gateway]
Client = Callable[..., RawClient]
TOO_LARGE = json_error("Request size limit exceeded")


def rsl(**config: Any) -> list[dict[str, Any]]:
    return [{"name": "request-size-limiting", "config": config}]


@pytest.mark.parametrize(("config", "size", "ok"), [
    ({"allowed_payload_size": 10, "size_unit": "bytes"}, 10, True),  # equal is allowed
    ({"allowed_payload_size": 10, "size_unit": "bytes"}, 11, False),
    ({"allowed_payload_size": 1, "size_unit": "kilobytes"}, 1024, True),
    ({"allowed_payload_size": 1, "size_unit": "kilobytes"}, 1025, False),
    ({"allowed_payload_size": 1}, 1 << 20, True),  # megabytes by default
    ({"allowed_payload_size": 1}, (1 << 20) + 1, False),
    ({"allowed_payload_size": 0, "size_unit": "bytes"}, 0, True),
    ({"allowed_payload_size": 0, "size_unit": "bytes"}, 1, False),
])
def test_content_length_limit(config: dict[str, Any], size: int, ok: bool, edge_gateway: Make,
                              edge_upstreams: Callable[..., Upstream],
                              edge_client: Client) -> None:
    up = edge_upstreams(echo_body)
    gw = edge_gateway(service(up.url, plugins=rsl(**config)))
    c = edge_client(gw.port)
    body = b"x" * size
    resp = c.request("POST", "/", [("Content-Length", str(size))], body)
    if ok:
        assert resp.status == 200
        assert resp.header("X-Body-Length") == str(size)
    else:
        assert resp.status == 413
        assert TOO_LARGE.fullmatch(resp.text)
        assert up.requests == []


def test_rejected_before_the_body_is_sent(edge_gateway: Make, edge_upstream: Upstream,
                                          edge_client: Client) -> None:
    gw = edge_gateway(service(edge_upstream.url, plugins=rsl(allowed_payload_size=1)))
    c = edge_client(gw.port)
    # only the head of a 5 MB upload: the answer comes without reading the body
    c.send(build_request("PUT", "/", [("Content-Length", str(5 << 20))]))
    resp = c.read_response()
    assert resp.status == 413
    assert TOO_LARGE.fullmatch(resp.text)
    assert resp.header("Connection") == "close"
    assert c.closed_by_peer()
    assert edge_upstream.requests == []


def test_expect_100_continue_gets_417(edge_gateway: Make, edge_upstream: Upstream,
                                      edge_client: Client) -> None:
    gw = edge_gateway(service(edge_upstream.url, plugins=rsl(allowed_payload_size=5,
                                                             size_unit="bytes")))
    c = edge_client(gw.port)
    c.send(build_request("POST", "/", [("Content-Length", "6"), ("Expect", "100-continue")]))
    resp = c.read_response()
    assert resp.status == 417 and resp.interim == []  # no 100 Continue was sent
    assert TOO_LARGE.fullmatch(resp.text)


@pytest.mark.parametrize(("headers", "body", "status"), [
    ([], b"", 411),  # a GET without Content-Length
    ([("Content-Length", "3")], b"abc", 200),
    ([("Transfer-Encoding", "chunked")], b"3\r\nabc\r\n0\r\n\r\n", 200),
])
def test_require_content_length(headers: list[tuple[str, str]], body: bytes, status: int,
                                edge_gateway: Make, edge_upstreams: Callable[..., Upstream],
                                edge_client: Client) -> None:
    up = edge_upstreams(echo_body)
    gw = edge_gateway(service(up.url, plugins=rsl(require_content_length=True)))
    method = "POST" if body else "GET"
    resp = edge_client(gw.port).request(method, "/", headers, body)
    assert resp.status == status
    if status == 411:
        assert json_error("A valid Content-Length header is required").fullmatch(resp.text)
        assert up.requests == []
    else:
        assert resp.body == b"abc"


@pytest.mark.parametrize(("expect", "status"), [(False, 413), (True, 417)])
def test_chunked_body_is_counted(edge_gateway: Make, edge_upstreams: Callable[..., Upstream],
                                 edge_client: Client, expect: bool, status: int) -> None:
    """Kong reads a chunked body and checks its size; tollway counts it while it streams."""
    up = edge_upstreams(echo_body)
    gw = edge_gateway(service(up.url, plugins=rsl(allowed_payload_size=4, size_unit="bytes")))
    c = edge_client(gw.port)
    headers = [("Transfer-Encoding", "chunked")]
    if expect:
        headers.append(("Expect", "100-continue"))
    c.send(build_request("POST", "/", headers))
    c.send(b"3\r\nabc\r\n")
    c.send(b"2\r\nde\r\n0\r\n\r\n")
    resp = c.read_response()
    assert resp.status == status
    assert json_error("Request size limit exceeded").fullmatch(resp.text)
    assert resp.header("connection") == "close"


def test_chunked_body_at_the_limit_passes(edge_gateway: Make,
                                          edge_upstreams: Callable[..., Upstream],
                                          edge_client: Client) -> None:
    up = edge_upstreams(echo_body)
    gw = edge_gateway(service(up.url, plugins=rsl(allowed_payload_size=4, size_unit="bytes")))
    resp = edge_client(gw.port).request("POST", "/", [("Transfer-Encoding", "chunked")],
                                        b"3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n")
    assert resp.status == 200 and resp.body == b"abcd"
