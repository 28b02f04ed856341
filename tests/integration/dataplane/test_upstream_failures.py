"""Upstream failures with real sockets (§4.4, §4.5): refused, reset, hang, slow, garbage,
connect timeout; retries only where nothing reached the upstream or the request is
idempotent; Kong's 502/504 bodies."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from dataplane_helpers import (
    TEXT_502,
    TEXT_504,
    echo_path,
    hang,
    json_error,
    reset,
    respond,
    sequence,
    service_doc,
    slow,
)

from tollway.dataplane.resolver import Resolver

# uvloop's timers run on libuv's cached millisecond clock, so one may fire about a millisecond
# early by the wall clock (CI once measured 0.3998 s for a 0.4 s connect timeout)
TIMER_SLACK = 0.01


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening: connecting is refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class CountingResolver(Resolver):
    """Resolves `*.test` names to 127.0.0.1 and counts lookups. The gateway resolves a
    non-static service host once per try, so lookups = connect attempts."""

    def __init__(self) -> None:
        super().__init__("")
        self.lookups = 0

    async def resolve(self, host: str, port: int, sni: str | None, tls_key=None):
        self.lookups += 1
        return ("127.0.0.1", port, sni, tls_key)


def test_refused_gives_502_text_body(make_gateway, make_client):
    gw = make_gateway(service_doc(f"http://127.0.0.1:{closed_port()}", retries=0))
    c = make_client(gw.port)
    resp = c.request("GET", "/x")
    assert resp.status == 502
    assert resp.header("content-type") == "text/plain; charset=utf-8"
    assert TEXT_502.fullmatch(resp.text), resp.text
    assert resp.header("content-length") == str(len(resp.body))
    # a 502 for a complete request does not need to close the client connection
    assert c.request("GET", "/y").status == 502


def test_refused_gives_502_json_when_accepted(make_gateway, make_client):
    gw = make_gateway(service_doc(f"http://127.0.0.1:{closed_port()}", retries=0))
    c = make_client(gw.port)
    resp = c.request("GET", "/x", [("Accept", "application/json")])
    assert resp.status == 502
    assert resp.header("content-type") == "application/json; charset=utf-8"
    body = json.loads(resp.body)
    assert body["message"] == "An invalid response was received from the upstream server"
    assert len(body["request_id"]) == 32
    assert json_error("An invalid response was received from the upstream server").fullmatch(
        resp.text)


def test_refused_retried_retries_plus_one_attempts(make_gateway, make_client):
    port = closed_port()
    gw = make_gateway(service_doc(f"http://refused.test:{port}", retries=2))
    counter = CountingResolver()
    gw.state.resolver = counter
    c = make_client(gw.port)
    resp = c.request("GET", "/x")
    assert resp.status == 502
    assert TEXT_502.fullmatch(resp.text)
    assert counter.lookups == 3, "retries: 2 means 3 connect attempts"


def test_refused_post_is_retried_because_nothing_was_sent(make_gateway, make_client):
    port = closed_port()
    gw = make_gateway(service_doc(f"http://refused.test:{port}", retries=3))
    counter = CountingResolver()
    gw.state.resolver = counter
    c = make_client(gw.port)
    resp = c.request("POST", "/x", body=b"payload")
    assert resp.status == 502
    assert counter.lookups == 4


def test_refused_then_up_succeeds_on_retry(make_upstream, make_gateway, make_client):
    """Attempts go refused → listening: the retry reaches the live upstream."""
    up = make_upstream()
    dead = closed_port()
    gw = make_gateway(service_doc(f"http://flaky.test:{up.port}", retries=1))

    class FirstDead(CountingResolver):
        async def resolve(self, host, port, sni, tls_key=None):
            self.lookups += 1
            return ("127.0.0.1", dead if self.lookups == 1 else port, sni, tls_key)

    gw.state.resolver = FirstDead()
    c = make_client(gw.port)
    resp = c.request("GET", "/x")
    assert resp.status == 200
    assert resp.body == b"/x"
    assert gw.state.resolver.lookups == 2


def test_reset_after_request_get_is_retried(make_upstream, make_gateway, make_client):
    up = make_upstream(sequence(reset, echo_path))
    gw = make_gateway(service_doc(up.url, retries=2))
    c = make_client(gw.port)
    resp = c.request("GET", "/idem")
    assert resp.status == 200
    assert resp.body == b"/idem"
    assert up.paths() == ["/idem", "/idem"]
    assert up.connections == 2


def test_reset_after_request_put_with_body_is_retried_with_body(make_upstream, make_gateway,
                                                                make_client):
    up = make_upstream(sequence(reset, respond(201, b"made")))
    gw = make_gateway(service_doc(up.url, retries=2))
    c = make_client(gw.port)
    resp = c.request("PUT", "/thing", body=b"the-body")
    assert resp.status == 201
    assert [(r.method, r.body) for r in up.requests] == [("PUT", b"the-body")] * 2


def test_reset_after_request_post_not_retried(make_upstream, make_gateway, make_client):
    up = make_upstream(sequence(reset, echo_path))
    gw = make_gateway(service_doc(up.url, retries=5))
    c = make_client(gw.port)
    resp = c.request("POST", "/once", body=b"payload")
    assert resp.status == 502
    assert TEXT_502.fullmatch(resp.text)
    assert [r.method for r in up.requests] == ["POST"], "a POST that reached the upstream " \
        "must never be re-sent"


def test_reset_after_request_patch_not_retried(make_upstream, make_gateway, make_client):
    up = make_upstream(sequence(reset, echo_path))
    gw = make_gateway(service_doc(up.url, retries=5))
    c = make_client(gw.port)
    resp = c.request("PATCH", "/once", body=b"payload")
    assert resp.status == 502
    assert len(up.requests) == 1


def test_reset_every_time_exhausts_retries(make_upstream, make_gateway, make_client):
    up = make_upstream(reset)
    gw = make_gateway(service_doc(up.url, retries=2))
    c = make_client(gw.port)
    resp = c.request("GET", "/always")
    assert resp.status == 502
    assert TEXT_502.fullmatch(resp.text)
    assert len(up.requests) == 3


def test_upstream_closes_idle_pooled_connection_then_request_succeeds(make_upstream,
                                                                      make_gateway, make_client):
    """The upstream answers with keep-alive, then closes the idle connection: the next
    request must not fail (the stale pooled connection is dropped or retried)."""
    up = make_upstream(respond(200, b"ok", close=True))
    gw = make_gateway(service_doc(up.url, retries=0))
    c = make_client(gw.port)
    assert c.request("GET", "/1").status == 200
    up.wait_requests(1)
    time.sleep(0.1)  # let the close reach the gateway (not an assertion on timing)
    assert c.request("GET", "/2").status == 200
    assert up.connections == 2


def test_hang_gives_504_after_read_timeout(make_upstream, make_gateway, make_client):
    up = make_upstream(hang)
    gw = make_gateway(service_doc(up.url, retries=0, read_timeout=500))
    c = make_client(gw.port, timeout=10)
    t0 = time.monotonic()
    resp = c.request("GET", "/hang")
    elapsed = time.monotonic() - t0
    assert resp.status == 504
    assert resp.header("content-type") == "text/plain; charset=utf-8"
    assert TEXT_504.fullmatch(resp.text), resp.text
    assert 0.5 - TIMER_SLACK <= elapsed < 5
    assert len(up.requests) == 1


def test_hang_504_json(make_upstream, make_gateway, make_client):
    up = make_upstream(hang)
    gw = make_gateway(service_doc(up.url, retries=0, read_timeout=300))
    c = make_client(gw.port, timeout=10)
    resp = c.request("GET", "/hang", [("Accept", "application/json")])
    assert resp.status == 504
    assert json.loads(resp.body)["message"] == "The upstream server is timing out"


def test_hang_get_retried_on_timeout(make_upstream, make_gateway, make_client):
    """nginx's proxy_next_upstream `error timeout`: a GET that timed out is tried again."""
    up = make_upstream(hang)
    gw = make_gateway(service_doc(up.url, retries=1, read_timeout=300))
    c = make_client(gw.port, timeout=10)
    t0 = time.monotonic()
    resp = c.request("GET", "/hang")
    assert resp.status == 504
    assert len(up.requests) == 2
    assert 0.6 <= time.monotonic() - t0 < 5


def test_hang_post_not_retried_on_timeout(make_upstream, make_gateway, make_client):
    up = make_upstream(hang)
    gw = make_gateway(service_doc(up.url, retries=3, read_timeout=300))
    c = make_client(gw.port, timeout=10)
    resp = c.request("POST", "/hang", body=b"x")
    assert resp.status == 504
    assert len(up.requests) == 1


def test_slow_within_read_timeout_is_200(make_upstream, make_gateway, make_client):
    up = make_upstream(slow(0.4))
    gw = make_gateway(service_doc(up.url, retries=0, read_timeout=3000))
    c = make_client(gw.port, timeout=10)
    resp = c.request("GET", "/slow")
    assert resp.status == 200
    assert resp.body == b"/slow"


def test_read_timeout_is_between_reads_not_total(make_upstream, make_gateway, make_client):
    """read_timeout bounds the gap between two reads (nginx proxy_read_timeout), not the
    whole response: a body that trickles in faster than the timeout succeeds."""
    import asyncio

    async def trickle(conn, req):
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        for ch in b"abcde":
            await asyncio.sleep(0.2)
            await conn.send(bytes([ch]))

    up = make_upstream(trickle)
    gw = make_gateway(service_doc(up.url, retries=0, read_timeout=500))
    c = make_client(gw.port, timeout=10)
    resp = c.request("GET", "/trickle")
    assert resp.status == 200
    assert resp.body == b"abcde"


def test_invalid_response_gives_502_not_retried(make_upstream, make_gateway, make_client):
    async def garbage(conn, req):
        await conn.send(b"THIS IS NOT HTTP\r\n\r\n")
        conn.close()

    up = make_upstream(garbage)
    gw = make_gateway(service_doc(up.url, retries=3))
    c = make_client(gw.port)
    resp = c.request("GET", "/garbage")
    assert resp.status == 502
    assert TEXT_502.fullmatch(resp.text)
    assert len(up.requests) == 1, "invalid_header is not in proxy_next_upstream's default"


def test_endless_response_head_gives_502(make_upstream, make_gateway, make_client):
    """An upstream whose header line never ends: 502 once MAX_RESPONSE_HEAD is passed (as
    nginx's "upstream sent too big header"), not a worker growing until the read timeout."""
    from tollway.dataplane.upstream.connection import MAX_RESPONSE_HEAD

    async def endless(conn, req):
        await conn.send(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        for _ in range(MAX_RESPONSE_HEAD // 16384 + 8):
            try:
                await conn.send(b"v" * 16384)
            except ConnectionError:
                break
        await asyncio.sleep(2)  # (the read timeout below is 60 s: not what ends it)
        conn.close()

    up = make_upstream(endless)
    gw = make_gateway(service_doc(up.url, retries=3))
    c = make_client(gw.port)
    started = time.monotonic()
    resp = c.request("GET", "/endless")
    assert resp.status == 502
    assert TEXT_502.fullmatch(resp.text)
    assert time.monotonic() - started < 2
    assert len(up.requests) == 1


def test_upstream_5xx_passed_through_not_retried(make_upstream, make_gateway, make_client):
    up = make_upstream(respond(503, b"upstream says no", [("Content-Type", "text/x-mine")],
                               reason="Service Unavailable"))
    gw = make_gateway(service_doc(up.url, retries=3))
    c = make_client(gw.port)
    resp = c.request("GET", "/5xx")
    assert resp.status == 503
    assert resp.body == b"upstream says no"
    assert resp.header("content-type") == "text/x-mine"
    assert len(up.requests) == 1


def test_upstream_closes_mid_response_truncates_client(make_upstream, make_gateway,
                                                       make_client):
    """Once response bytes went to the client nothing can be retried or replaced: the
    client connection is cut so the truncation is visible."""
    async def partial(conn, req):
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-part")
        conn.close()

    up = make_upstream(partial)
    gw = make_gateway(service_doc(up.url, retries=3))
    c = make_client(gw.port)
    c.send(b"GET /partial HTTP/1.1\r\nHost: x\r\n\r\n")
    status, *_ = c.read_head()
    assert status == 200
    with pytest.raises(EOFError):
        c.read_exactly(100)
    assert len(up.requests) == 1


def test_connect_timeout_gives_504(make_gateway, make_client):
    """connect_timeout with a listener whose accept queue is full: Linux drops further SYNs,
    so connect() hangs like against a black-holed address (a non-routable address cannot be
    used in this sandbox)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    for _ in range(4):  # fill the accept queue (backlog 0 still admits one or two)
        f = socket.socket()
        f.setblocking(False)
        try:
            f.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(f)
    probe = socket.socket()
    probe.settimeout(0.3)
    try:
        probe.connect(("127.0.0.1", port))
        pytest.fail("could not fill the accept queue; the kernel accepted anyway")
    except (TimeoutError, OSError):
        pass
    finally:
        probe.close()
    try:
        gw = make_gateway(service_doc(f"http://127.0.0.1:{port}", retries=0,
                                      connect_timeout=400))
        c = make_client(gw.port, timeout=10)
        t0 = time.monotonic()
        resp = c.request("GET", "/ct")
        elapsed = time.monotonic() - t0
        assert resp.status == 504
        assert TEXT_504.fullmatch(resp.text)
        assert 0.4 - TIMER_SLACK <= elapsed < 5
    finally:
        for f in fillers:
            f.close()
        lsock.close()
