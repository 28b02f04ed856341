"""WebSocket upgrade pass-through, and config hot swaps under load."""

from __future__ import annotations

import socket
import threading
import time

import httpx
from dataplane_helpers import build_request, echo_path, service_doc, slow, websocket_echo

from tollway.config.model import Config

WS_HEADERS = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
              ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
              ("Sec-WebSocket-Version", "13")]


def open_tunnel(make_upstream, make_gateway, make_client):
    up = make_upstream(websocket_echo)
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    c.send(build_request("GET", "/ws", WS_HEADERS))
    status, _, _, headers, _ = c.read_head()
    return up, gw, c, status, headers


def test_websocket_upgrade_and_echo(make_upstream, make_gateway, make_client):
    up, _gw, c, status, headers = open_tunnel(make_upstream, make_gateway, make_client)
    assert status == 101
    hmap = {n.lower(): v for n, v in headers}
    assert hmap["upgrade"].lower() == "websocket"
    assert "upgrade" in hmap["connection"].lower()
    assert hmap["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    req = up.requests[0]
    assert req.header("upgrade") == "websocket"
    assert req.header("connection") == "keep-alive, Upgrade"
    assert req.header("sec-websocket-key") == "dGhlIHNhbXBsZSBub25jZQ=="
    for msg in (b"\x81\x05hello", b"x" * 100_000):
        c.send(msg)
        assert c.read_exactly(len(msg)) == msg


def test_websocket_client_close_closes_upstream(make_upstream, make_gateway, make_client):
    up, _gw, c, status, _ = open_tunnel(make_upstream, make_gateway, make_client)
    assert status == 101
    c.send(b"ping")
    assert c.read_exactly(4) == b"ping"
    c.close()
    deadline = time.monotonic() + 5
    while not up.tunnel_eof.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert up.tunnel_eof.is_set(), "closing the client side must close the upstream side"


def test_websocket_client_half_close_reaches_upstream(make_upstream, make_gateway,
                                                      make_client):
    up, _gw, c, status, _ = open_tunnel(make_upstream, make_gateway, make_client)
    assert status == 101
    c.sock.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + 5
    while not up.tunnel_eof.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert up.tunnel_eof.is_set(), "the client's FIN must be passed to the upstream"
    assert c.closed_by_peer()


def test_websocket_upstream_close_closes_client(make_upstream, make_gateway, make_client):
    _up, _gw, c, status, _ = open_tunnel(make_upstream, make_gateway, make_client)
    assert status == 101
    c.send(b"server-close")
    assert c.closed_by_peer(), "the upstream closing the tunnel must close the client"


def test_websocket_upgrade_refused_by_upstream(make_upstream, make_gateway, make_client):
    """An upstream that answers the upgrade with 200 keeps a normal HTTP exchange."""
    up = make_upstream(echo_path)
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    resp = c.request("GET", "/ws", WS_HEADERS)
    assert resp.status == 200
    assert resp.body == b"/ws"


def test_websocket_data_sent_with_upgrade_request(make_upstream, make_gateway, make_client):
    """Bytes the client sends right behind the upgrade request (before the 101) are
    delivered once the tunnel is open."""
    up = make_upstream(websocket_echo)
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    c.send(build_request("GET", "/ws", WS_HEADERS) + b"early-bytes")
    status, *_ = c.read_head()
    assert status == 101
    assert c.read_exactly(len(b"early-bytes")) == b"early-bytes"


# -- hot swap ---------------------------------------------------------------------------------

def two_docs(a_url: str, b_url: str):
    doc_a = {"_format_version": "3.0", "services": [
        {"name": "a", "url": a_url, "routes": [{"name": "r", "paths": ["/"]}]}]}
    doc_b = {"_format_version": "3.0", "services": [
        {"name": "b", "url": b_url, "routes": [{"name": "r", "paths": ["/"]}]}]}
    return doc_a, doc_b


def test_hot_swap_under_load_no_failed_request(make_upstream, make_gateway):
    a, b = make_upstream(), make_upstream()
    doc_a, doc_b = two_docs(a.url, b.url)
    gw = make_gateway(doc_a)
    stop = threading.Event()
    results: list[int] = []
    errors: list[BaseException] = []

    def client_loop(n: int) -> None:
        try:
            with httpx.Client(base_url=gw.url, timeout=5) as client:
                i = 0
                while not stop.is_set():
                    r = client.get(f"/load/{n}/{i}")
                    results.append(r.status_code)
                    i += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for i in range(40):
        gw.swap(doc_b if i % 2 == 0 else doc_a)
        time.sleep(0.01)
    gw.swap(doc_b)
    time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(10)
    assert not errors, errors
    assert len(results) > 40
    assert set(results) == {200}
    assert a.requests and b.requests, "both configurations must have served traffic"
    # after the last swap, everything goes to b
    before = len(a.requests)
    with httpx.Client(base_url=gw.url) as client:
        assert client.get("/final").status_code == 200
    assert len(a.requests) == before
    assert b.paths()[-1] == "/final"


def test_in_flight_request_keeps_its_snapshot(make_upstream, make_gateway, make_client):
    a = make_upstream(slow(0.5))
    gw = make_gateway(service_doc(a.url, routes=[{"name": "r", "paths": ["/old"],
                                                  "strip_path": False}]))
    c = make_client(gw.port, timeout=10)
    c.send(build_request("GET", "/old"))
    a.wait_requests(1)
    gw.swap({"_format_version": "3.0"})  # /old no longer routed
    resp = c.read_response()
    assert resp.status == 200
    assert resp.body == b"/old"
    assert c.request("GET", "/old").status == 404


def test_failed_compile_keeps_old_snapshot(make_upstream, make_gateway, make_client):
    a = make_upstream()
    gw = make_gateway(service_doc(a.url))
    old_hash = gw.state.snapshot.hash
    good = gw.config.entities
    broken_services = [dict(s, port="not-a-port") for s in good["services"]]
    broken = Config.from_entities({**good, "services": broken_services})
    raised = None
    try:
        gw.swap(broken)
    except Exception as exc:
        raised = exc
    assert raised is not None, "a config that does not compile must raise from swap()"
    assert gw.state.snapshot.hash == old_hash
    c = make_client(gw.port)
    resp = c.request("GET", "/still")
    assert resp.status == 200
    assert a.paths() == ["/still"]


def test_swap_reuses_the_router_only_while_routes_and_services_are_unchanged(
        make_upstream, make_gateway, make_client):
    a = make_upstream()
    doc = service_doc(a.url, routes=[{"name": "r", "paths": ["/one"], "strip_path": False}])
    gw = make_gateway(doc)
    router = gw.state.snapshot.router
    c = make_client(gw.port)
    # a plugin-only change: the same router object serves the new snapshot
    gw.swap({**doc, "plugins": [{"name": "correlation-id"}]})
    assert gw.state.snapshot.router is router
    assert c.request("GET", "/one").status == 200
    assert a.paths()[-1] == "/one"
    assert a.requests[-1].all("kong-request-id") != []  # the new snapshot's chain ran
    # a route change rebuilds it, and routing follows the new routes
    changed = service_doc(a.url, routes=[{"name": "r", "paths": ["/two"], "strip_path": False}])
    gw.swap(changed)
    assert gw.state.snapshot.router is not router
    assert c.request("GET", "/one").status == 404
    assert c.request("GET", "/two").status == 200
    # a service change (same routes) rebuilds it too: matches carry the new service
    moved = service_doc(make_upstream().url,
                        routes=[{"name": "r", "paths": ["/two"], "strip_path": False}])
    before = gw.state.snapshot.router
    gw.swap(moved)
    assert gw.state.snapshot.router is not before
    assert c.request("GET", "/two").status == 200
