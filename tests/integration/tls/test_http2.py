"""HTTP/2 (ALPN h2) through the TLS listener, with httpx's HTTP/2 client: methods, bodies
both ways, many concurrent streams on one connection, flow control with bodies larger than
the windows, local replies, HEAD, and a stream reset by the client."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx
from dataplane_helpers import (
    Request as UpRequest,
)
from dataplane_helpers import (
    UpConn,
    chunked,
    echo_body,
    json_error,
    raw,
    respond,
    slow,
)
from h2.config import H2Configuration
from h2.connection import H2Connection as H2State
from h2.events import DataReceived, ResponseReceived, StreamEnded


def _doc(url: str, paths: list[str] | None = None) -> dict[str, Any]:
    return {"_format_version": "3.0",
            "services": [{"name": "svc", "url": url,
                          "routes": [{"name": "r", "paths": paths or ["/"]}]}]}


def _wait(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)


def _client() -> httpx.Client:
    return httpx.Client(verify=False, http2=True, timeout=10)


def test_get_and_post_over_h2(make_plain_upstream, make_tls_gateway):
    up = make_plain_upstream(echo_body)
    gw = make_tls_gateway(_doc(up.url))
    with _client() as c:
        r = c.get(gw.tls_url + "/a", headers={"Cookie": "x=1"})
        assert r.http_version == "HTTP/2" and r.status_code == 200
        assert r.content == b""
        r = c.post(gw.tls_url + "/b", content=b"hello h2")
        assert r.http_version == "HTTP/2" and r.status_code == 200
        assert r.content == b"hello h2"
        assert r.headers["x-body-length"] == "8"
        assert r.headers["via"].startswith("1.1 tollway/")
        assert "connection" not in r.headers
    first, second = up.requests
    assert (first.method, first.target) == ("GET", "/a")
    assert first.header("x-forwarded-host") == "127.0.0.1"  # from :authority
    assert first.header("x-forwarded-proto") == "https"
    assert first.header("cookie") == "x=1"
    assert second.method == "POST" and second.body == b"hello h2"
    assert second.header("content-length") == "8"


def test_streamed_body_without_length_is_sent_chunked(make_plain_upstream, make_tls_gateway):
    up = make_plain_upstream(echo_body)
    gw = make_tls_gateway(_doc(up.url))

    def parts():
        yield b"abc"
        yield b"defg"

    with _client() as c:
        r = c.post(gw.tls_url + "/stream", content=parts())
    assert r.status_code == 200 and r.content == b"abcdefg"
    req = up.requests[0]
    assert req.chunked and req.raw.endswith(b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")


def test_concurrent_streams_on_one_connection(make_plain_upstream, make_tls_gateway):
    up = make_plain_upstream(slow(0.05, echo_body))
    gw = make_tls_gateway(_doc(up.url))

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(verify=False, http2=True, timeout=10) as c:
            await c.get(gw.tls_url + "/warm")  # one connection, then 30 streams on it
            return await asyncio.gather(*(
                c.post(gw.tls_url + f"/s{i}", content=b"body-%d" % i) for i in range(30)))

    responses = asyncio.run(run())
    assert [r.content for r in responses] == [b"body-%d" % i for i in range(30)]
    assert all(r.http_version == "HTTP/2" for r in responses)
    # the gateway saw one downstream connection for all of them
    assert gw.state.stats_accepted == 1
    # they ran concurrently: more than one upstream connection was needed
    assert up.connections > 1


def test_large_bodies_respect_flow_control(make_plain_upstream, make_tls_gateway):
    big = bytes(range(256)) * 16384  # 4 MiB: many times the 64 KiB / 256 KiB windows
    up = make_plain_upstream(echo_body)
    gw = make_tls_gateway(_doc(up.url))
    with _client() as c:
        r = c.post(gw.tls_url + "/big", content=big)
        assert r.status_code == 200 and r.content == big
        download = make_plain_upstream(respond(200, big))
        gw.swap(_doc(download.url))
        r = c.get(gw.tls_url + "/big")
        assert r.status_code == 200 and r.content == big


def test_chunked_upstream_response(make_plain_upstream, make_tls_gateway):
    up = make_plain_upstream(chunked([b"one-", b"two-", b"three"], [("X-Up", "1")]))
    gw = make_tls_gateway(_doc(up.url))
    with _client() as c:
        r = c.get(gw.tls_url + "/c")
    assert r.status_code == 200 and r.content == b"one-two-three"
    assert r.headers["x-up"] == "1" and "transfer-encoding" not in r.headers


def test_local_replies_and_head(make_plain_upstream, make_tls_gateway):
    up = make_plain_upstream(respond(200, b"twelve bytes"))
    gw = make_tls_gateway(_doc(up.url, ["/api"]))
    with _client() as c:
        r = c.get(gw.tls_url + "/nowhere")
        assert r.http_version == "HTTP/2" and r.status_code == 404
        assert json_error("no Route matched with those values").fullmatch(r.text)
        r = c.head(gw.tls_url + "/api")
        assert r.status_code == 200 and r.content == b""
        assert r.headers["content-length"] == "12"
        r = c.get(gw.tls_url + "/api")  # the connection is still good after both
        assert r.content == b"twelve bytes"


def test_upstream_failure_is_a_502_on_its_stream(make_plain_upstream, make_tls_gateway):
    async def bad(conn: UpConn, req: UpRequest) -> None:
        await conn.send(b"not http at all\r\n\r\n")
        conn.close()

    ok = make_plain_upstream(echo_body)
    broken = make_plain_upstream(bad)
    doc = {"_format_version": "3.0", "services": [
        {"name": "ok", "url": ok.url, "routes": [{"name": "ok", "paths": ["/ok"]}]},
        {"name": "bad", "url": broken.url, "retries": 0,
         "routes": [{"name": "bad", "paths": ["/bad"]}]}]}
    gw = make_tls_gateway(doc)
    with _client() as c:
        assert c.get(gw.tls_url + "/bad").status_code == 502
        assert c.post(gw.tls_url + "/ok", content=b"fine").content == b"fine"


def test_client_reset_stream_frees_the_exchange(make_plain_upstream, make_tls_gateway):
    seen = {"request": False, "upstream_closed": False}

    async def wait_for_close(conn: UpConn, _: None) -> None:
        await conn.reader.readuntil(b"\r\n\r\n")
        seen["request"] = True
        seen["upstream_closed"] = await conn.reader.read(1) == b""  # never answered

    up = make_plain_upstream(raw(wait_for_close))
    gw = make_tls_gateway(_doc(up.url))

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    client = H2State(H2Configuration(client_side=True))
    with socket.create_connection(("127.0.0.1", gw.tls_port), timeout=5) as raw_sock, \
            ctx.wrap_socket(raw_sock) as tls:
        client.initiate_connection()
        headers = [(":method", "GET"), (":path", "/slow"), (":scheme", "https"),
                   (":authority", "reset.test")]
        client.send_headers(1, headers, end_stream=True)
        tls.sendall(client.data_to_send())
        _wait(lambda: seen["request"])
        client.reset_stream(1)  # RST_STREAM: the client no longer wants this response
        tls.sendall(client.data_to_send())
        _wait(lambda: seen["upstream_closed"])
        # the connection itself still serves new streams
        up.behaviour = echo_body
        client.send_headers(3, [*headers[:1], (":path", "/next"), *headers[2:]],
                            end_stream=True)
        tls.sendall(client.data_to_send())
        status = body = None
        body = b""
        while True:
            events = client.receive_data(tls.recv(65536))
            tls.sendall(client.data_to_send())
            for ev in events:
                if isinstance(ev, ResponseReceived) and ev.stream_id == 3:
                    status = dict(ev.headers)[b":status"]
                elif isinstance(ev, DataReceived) and ev.stream_id == 3:
                    body += ev.data
            if any(isinstance(ev, StreamEnded) and ev.stream_id == 3 for ev in events):
                break
    assert status == b"200" and body == b""
    assert seen["request"]
    # the gateway abandoned the upstream request instead of leaving it hanging
    assert seen["upstream_closed"]
    assert gw.state.active_requests() == 0


def test_proxy_cache_key_names_http_2(make_plain_upstream, make_tls_gateway):
    """proxy-cache's key uses nginx's $request, whose version for an h2 stream is HTTP/2.0:
    an h2 request and an HTTP/1.1 one for the same URI are separate entries, as in Kong."""
    import hashlib

    up = make_plain_upstream(respond(200, b'{"n":1}', [("Content-Type", "application/json")]))
    doc = _doc(up.url)
    doc["plugins"] = [{"name": "proxy-cache", "config": {"strategy": "memory"}}]
    gw = make_tls_gateway(doc)
    route_id = gw.gw.config.entities["routes"][0]["id"]
    with httpx.Client(verify=False, http2=False, timeout=10) as c1:
        r1 = c1.get(gw.tls_url + "/c")
    with _client() as c2:
        r2 = c2.get(gw.tls_url + "/c")
        r3 = c2.get(gw.tls_url + "/c")
    assert r1.http_version == "HTTP/1.1" and r2.http_version == "HTTP/2"
    assert r1.headers["x-cache-key"] == hashlib.sha256(
        f"{route_id}|GET|GET /c HTTP/1.1||".encode()).hexdigest()
    assert r2.headers["x-cache-key"] == hashlib.sha256(
        f"{route_id}|GET|GET /c HTTP/2.0||".encode()).hexdigest()
    assert [r.headers["x-cache-status"] for r in (r1, r2, r3)] == ["Miss", "Miss", "Hit"]
