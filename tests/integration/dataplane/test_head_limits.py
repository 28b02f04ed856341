"""Request head limits over real sockets: an unfinished head cannot grow without bound, and
the 431 limits hold however the head is split across reads (nginx's
large_client_header_buffers; docs/differences-from-kong.md)."""

from __future__ import annotations

import time

from dataplane_helpers import build_request, service_doc

from tollway.dataplane.protocol import MAX_HEAD_FED, MAX_HEADER_COUNT


def send_dribbled(c, data: bytes, piece: int = 1024) -> None:
    # small writes with pauses: the gateway sees the head over many reads
    for i in range(0, len(data), piece):
        c.send(data[i:i + piece])
        if i % (16 * piece) == 0:
            time.sleep(0.001)


def assert_rejected_431(c) -> None:
    resp = c.read_response()
    assert resp.status == 431, resp.raw_head
    assert resp.header("connection") == "close"
    assert resp.body.startswith(b"Request header or cookie too large\n")
    assert c.closed_by_peer()


def test_endless_header_value_is_cut_off(make_upstream, make_gateway, make_client) -> None:
    """httptools keeps an unfinished header line itself: without a count of the bytes fed,
    a client sending one endless value grew the worker by ~170 MiB in 10 s (and slowed it
    down with quadratic concatenation) until the 60 s header timeout."""
    up = make_upstream()
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    start = b"GET /a HTTP/1.1\r\nHost: x\r\nX-Endless: "
    # one byte over the bound, never a line end: every byte is read before the reply
    c.send(start + b"v" * (MAX_HEAD_FED + 1 - len(start)))
    assert_rejected_431(c)
    assert up.requests == []
    assert make_client(gw.port).request("GET", "/after").status == 200


def test_endless_header_name_is_cut_off(make_upstream, make_gateway, make_client) -> None:
    up = make_upstream()
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    start = b"GET /a HTTP/1.1\r\nHost: x\r\nX-"
    send_dribbled(c, start + b"n" * (MAX_HEAD_FED + 1 - len(start)), piece=32768)
    assert_rejected_431(c)
    assert up.requests == []


def test_large_head_within_limits_is_proxied_however_split(make_upstream, make_gateway,
                                                           make_client) -> None:
    """Three 8,000-byte headers (24,000 of the 32 KiB), behind a request that ends in the
    same write, dribbled in 1 KiB pieces."""
    up = make_upstream()
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    big = (b"GET /big HTTP/1.1\r\nHost: x\r\n"
           + b"".join(b"X-Big-%d: %s\r\n" % (i, b"b" * 7990) for i in range(3)) + b"\r\n")
    send_dribbled(c, build_request("GET", "/first") + big)
    assert [c.read_response().status for _ in range(2)] == [200, 200]
    assert up.paths() == ["/first", "/big"]
    assert up.requests[1].header("x-big-2") == "b" * 7990


def test_long_line_split_across_reads_after_a_pipelined_request(make_upstream, make_gateway,
                                                                make_client) -> None:
    """The first part of the head arrives in the read that ended the request before it;
    the 9,000-byte line still gets its 431."""
    up = make_upstream()
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    c.send(build_request("GET", "/first") + b"GET /a HTTP/1.1\r\nHost: x\r\nX-Big: "
           + b"b" * 4500)
    assert c.read_response().status == 200
    time.sleep(0.05)  # (a separate read)
    c.send(b"b" * 4500 + b"\r\n\r\n")
    assert_rejected_431(c)
    assert up.paths() == ["/first"]


def test_header_count_limit(make_upstream, make_gateway, make_client) -> None:
    """More than MAX_HEADER_COUNT headers is a 431 even when they are tiny; exactly that
    many are proxied."""
    up = make_upstream()
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    ok = b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADER_COUNT - 1))  # + Host
    c.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n" + ok + b"\r\n")
    assert c.read_response().status == 200
    c.send(b"GET /many HTTP/1.1\r\nHost: x\r\n" + ok + b"X-One-More: v\r\n\r\n")
    assert_rejected_431(c)
    assert up.paths() == ["/ok"]
