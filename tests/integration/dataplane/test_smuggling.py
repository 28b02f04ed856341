"""Request-smuggling defences (RFC 9112): every malformed request gets a 400 (414 for a long
request line, 431 for large headers) with `Connection: close`, the server closes the
connection, and a request pipelined behind the malformed one never reaches the upstream."""

from __future__ import annotations

import pytest
from dataplane_helpers import build_request, service_doc

SMUGGLED = build_request("GET", "/smuggled")

# (id, raw request bytes, expected status, whether the head itself is malformed)
# Head-level cases must never reach the upstream at all; body-level cases are detected after
# a valid head, so only the request pipelined behind them is checked.
CORPUS = [
    ("cl-and-te",
     b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400, True),
    ("te-and-cl",
     b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
     b"0\r\n\r\n", 400, True),
    ("differing-duplicate-cl",
     b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400,
     True),
    ("cl-list-differing",
     b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!", 400, True),
    ("cl-not-a-number",
     b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400, True),
    ("cl-negative",
     b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, True),
    ("te-not-chunked-final",
     b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400,
     True),
    ("te-unknown",
     b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400, True),
    ("space-before-colon",
     b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello", 400, True),
    ("obs-fold",
     b"GET /a HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n", 400, True),
    ("obs-fold-on-te",
     b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400, True),
    ("bare-cr-in-value",
     b"GET /a HTTP/1.1\r\nHost: x\r\nX-Bad: a\rb\r\n\r\n", 400, True),
    ("bare-cr-line-end",
     b"GET /a HTTP/1.1\r\nHost: x\r\nX-Bad: a\r\r\n\r\n", 400, True),
    ("nul-in-value",
     b"GET /a HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n", 400, True),
    ("space-in-header-name",
     b"GET /a HTTP/1.1\r\nHost: x\r\nX Bad: a\r\n\r\n", 400, True),
    ("bad-request-line",
     b"GET /a HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, True),
    ("bad-version",
     b"GET /a HTTP/9.Z\r\nHost: x\r\n\r\n", 400, True),
    ("chunk-size-not-hex",
     b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
     400, False),
    ("chunk-size-negative",
     b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
     400, False),
    ("chunk-size-0x-prefix",
     b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
     400, False),
    ("chunk-size-overflow",
     b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"10000000000000000000005\r\nhello\r\n0\r\n\r\n", 400, False),
    ("chunk-data-too-long",
     b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
     400, False),
    ("chunk-size-bare-lf",
     b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
     400, False),
    ("request-line-too-long",
     b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, True),
    ("header-line-too-long",
     b"GET /a HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431, True),
    ("headers-too-large-in-total",
     b"GET /a HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 4000) for i in range(10)) + b"\r\n", 431, True),
]


@pytest.mark.parametrize(("raw", "status", "head_level"),
                         [pytest.param(r, s, h, id=i) for i, r, s, h in CORPUS])
def test_malformed_request_rejected_and_connection_closed(make_upstream, make_gateway,
                                                          make_client, raw, status, head_level):
    up = make_upstream()
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    c.send(raw + SMUGGLED)
    resp = c.read_response()
    assert resp.status == status, resp.raw_head
    assert resp.header("connection") == "close"
    assert resp.header("content-type") == "text/plain; charset=utf-8"
    assert resp.body.startswith(
        {400: b"Bad request\n", 414: b"URI too long\n",
         431: b"Request header or cookie too large\n"}[status])
    assert c.closed_by_peer(), "the server must close the connection after a malformed request"
    assert c.buf == b"", f"nothing may follow the error response: {c.buf[:200]!r}"
    # The request pipelined after the malformed one was never parsed nor proxied.
    assert "/smuggled" not in up.paths()
    if head_level:
        assert up.requests == [], "a malformed request head must not reach the upstream"


def test_malformed_request_after_valid_one_on_same_connection(make_upstream, make_gateway,
                                                              make_client):
    """A valid keep-alive request is served; the malformed one that follows is rejected and
    the request behind it never reaches the upstream."""
    up = make_upstream()
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    assert c.request("GET", "/first").status == 200
    c.send(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
           + SMUGGLED)
    resp = c.read_response()
    assert resp.status == 400
    assert resp.header("connection") == "close"
    assert c.closed_by_peer()
    assert up.paths() == ["/first"]


def test_valid_identical_requests_are_not_rejected(make_upstream, make_gateway, make_client):
    """Control for the corpus: the same shapes, well-formed, are proxied."""
    up = make_upstream()
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    c.send(b"POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
           b"POST /te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n0\r\n\r\n"
           b"GET /long HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 4000 + b"\r\n\r\n")
    assert [c.read_response().status for _ in range(3)] == [200, 200, 200]
    assert up.paths() == ["/cl", "/te", "/long"]
    assert [r.body for r in up.requests[:2]] == [b"hello", b"hello"]
