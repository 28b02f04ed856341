"""Upstream request headers (§2.7, §2.8) and downstream response headers (§2.9)."""

from __future__ import annotations

import re

from dataplane_helpers import respond, service_doc

from tollway import __version__

FORWARDED = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
             "x-forwarded-path", "x-forwarded-prefix", "x-real-ip"]


def only(req, name):
    """The single value of `name` the upstream got (duplicates are a failure)."""
    values = req.all(name)
    assert len(values) == 1, f"{name}: expected exactly one value, got {values}"
    return values[0]


def test_forwarded_headers_exact_values(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url, routes=[
        {"name": "api", "paths": ["/api"], "strip_path": True}]))
    c = make_client(gw.port)
    assert c.request("GET", "/api/users?x=1", host="Example.COM:1234").status == 200
    req = upstream.requests[0]
    assert req.target == "/users?x=1"
    assert only(req, "x-forwarded-for") == "127.0.0.1"
    assert only(req, "x-forwarded-proto") == "http"
    assert only(req, "x-forwarded-host") == "example.com"
    assert only(req, "x-forwarded-port") == str(gw.port)
    assert only(req, "x-forwarded-path") == "/api/users"
    assert only(req, "x-forwarded-prefix") == "/api"
    assert only(req, "x-real-ip") == "127.0.0.1"
    assert only(req, "host") == f"127.0.0.1:{upstream.port}"
    assert only(req, "connection") == "keep-alive"
    assert req.version == "HTTP/1.1"


def test_forwarded_host_per_request_and_ipv6_literals(upstream, make_gateway, make_client):
    """nginx's $host: each request's own Host, port dropped, lower-cased; an IPv6 literal
    keeps its brackets."""
    gw = make_gateway(service_doc(upstream.url))
    c = make_client(gw.port)
    hosts = ["A.example:1", "b.example", "[::1]:8000", "[2001:DB8::1]", "A.example:1", ""]
    for host in hosts:
        assert c.request("GET", "/", host=host).status == 200
    assert [only(r, "x-forwarded-host") for r in upstream.requests] == [
        "a.example", "b.example", "[::1]", "[2001:db8::1]", "a.example", ""]


def test_xff_appended(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url))
    c = make_client(gw.port)
    c.request("GET", "/", [("X-Forwarded-For", "1.2.3.4, 5.6.7.8")])
    assert only(upstream.requests[0], "x-forwarded-for") == "1.2.3.4, 5.6.7.8, 127.0.0.1"


def test_no_prefix_without_strip_path(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url, routes=[
        {"name": "api", "paths": ["/api"], "strip_path": False}]))
    c = make_client(gw.port)
    c.request("GET", "/api/users")
    req = upstream.requests[0]
    assert req.target == "/api/users"
    assert req.header("x-forwarded-prefix") is None


def test_no_prefix_for_root_route(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url, routes=[
        {"name": "root", "paths": ["/"], "strip_path": True}]))
    c = make_client(gw.port)
    c.request("GET", "/users")
    assert upstream.requests[0].header("x-forwarded-prefix") is None


SPOOFED = [("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.example"),
           ("X-Forwarded-Port", "1"), ("X-Forwarded-Path", "/evil"),
           ("X-Forwarded-Prefix", "/evil"), ("X-Real-IP", "6.6.6.6")]


def test_spoofed_forwarded_headers_replaced_for_untrusted_client(upstream, make_gateway,
                                                                  make_client):
    gw = make_gateway(service_doc(upstream.url, routes=[
        {"name": "api", "paths": ["/api"]}]))
    c = make_client(gw.port)
    c.request("GET", "/api/x", SPOOFED, host="gw.example")
    req = upstream.requests[0]
    assert only(req, "x-forwarded-proto") == "http"
    assert only(req, "x-forwarded-host") == "gw.example"
    assert only(req, "x-forwarded-port") == str(gw.port)
    assert only(req, "x-forwarded-path") == "/api/x"
    assert only(req, "x-forwarded-prefix") == "/api"
    assert only(req, "x-real-ip") == "127.0.0.1"


def test_spoofed_prefix_dropped_for_untrusted_client_without_strip(upstream, make_gateway,
                                                                   make_client):
    gw = make_gateway(service_doc(upstream.url, routes=[
        {"name": "api", "paths": ["/api"], "strip_path": False}]))
    c = make_client(gw.port)
    c.request("GET", "/api/x", [("X-Forwarded-Prefix", "/evil")])
    assert upstream.requests[0].header("x-forwarded-prefix") is None


def test_forwarded_headers_honoured_from_trusted_client(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url, routes=[{"name": "api", "paths": ["/api"]}]),
                      trusted_ips="127.0.0.1/32")
    c = make_client(gw.port)
    c.request("GET", "/api/x", SPOOFED, host="gw.example")
    req = upstream.requests[0]
    assert only(req, "x-forwarded-proto") == "https"
    assert only(req, "x-forwarded-host") == "evil.example"
    assert only(req, "x-forwarded-port") == "1"
    assert only(req, "x-forwarded-path") == "/evil"
    assert only(req, "x-forwarded-prefix") == "/evil"
    # real_ip_header defaults to X-Real-IP: the trusted peer's value is the client address
    assert only(req, "x-real-ip") == "6.6.6.6"


def test_trusted_client_without_forwarded_headers_gets_defaults(upstream, make_gateway,
                                                                make_client):
    gw = make_gateway(service_doc(upstream.url, routes=[{"name": "api", "paths": ["/api"]}]),
                      trusted_ips="127.0.0.1/32")
    c = make_client(gw.port)
    c.request("GET", "/api/x", host="gw.example:99")
    req = upstream.requests[0]
    assert only(req, "x-forwarded-proto") == "http"
    assert only(req, "x-forwarded-host") == "gw.example"
    assert only(req, "x-forwarded-port") == str(gw.port)
    assert only(req, "x-forwarded-path") == "/api/x"
    assert only(req, "x-forwarded-prefix") == "/api"
    assert only(req, "x-real-ip") == "127.0.0.1"
    assert only(req, "x-forwarded-for") == "127.0.0.1"


def test_trusted_ips_not_matching_peer_is_untrusted(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url), trusted_ips="10.0.0.0/8")
    c = make_client(gw.port)
    c.request("GET", "/", SPOOFED)
    req = upstream.requests[0]
    assert only(req, "x-forwarded-proto") == "http"
    assert only(req, "x-real-ip") == "127.0.0.1"


def test_real_ip_header_x_forwarded_for(upstream, make_gateway, make_client):
    """real_ip_header=X-Forwarded-For, not recursive: the last address is the client. XFF
    is still `<incoming>, <realip_remote_addr>` (the direct peer)."""
    gw = make_gateway(service_doc(upstream.url), trusted_ips="127.0.0.1/32",
                      real_ip_header="X-Forwarded-For")
    c = make_client(gw.port)
    c.request("GET", "/", [("X-Forwarded-For", "1.1.1.1, 2.2.2.2")])
    req = upstream.requests[0]
    assert only(req, "x-real-ip") == "2.2.2.2"
    assert only(req, "x-forwarded-for") == "1.1.1.1, 2.2.2.2, 127.0.0.1"


def test_real_ip_header_recursive(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url), trusted_ips="127.0.0.1/32, 10.0.0.0/8",
                      real_ip_header="X-Forwarded-For", real_ip_recursive="on")
    c = make_client(gw.port)
    c.request("GET", "/", [("X-Forwarded-For", "1.1.1.1, 2.2.2.2, 10.0.0.5")])
    assert only(upstream.requests[0], "x-real-ip") == "2.2.2.2"


def test_real_ip_header_custom(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url), trusted_ips="127.0.0.1/32",
                      real_ip_header="X-Client-Address")
    c = make_client(gw.port)
    c.request("GET", "/", [("X-Client-Address", "9.9.9.9")])
    assert only(upstream.requests[0], "x-real-ip") == "9.9.9.9"


def test_real_ip_without_incoming_xff_becomes_xff(upstream, make_gateway, make_client):
    """Without an incoming X-Forwarded-For, Kong sends `$remote_addr`, which after real-IP
    processing is the address from real_ip_header (§2.8)."""
    gw = make_gateway(service_doc(upstream.url), trusted_ips="127.0.0.1/32")
    c = make_client(gw.port)
    c.request("GET", "/", [("X-Real-IP", "9.9.9.9")])
    req = upstream.requests[0]
    assert only(req, "x-real-ip") == "9.9.9.9"
    assert only(req, "x-forwarded-for") == "9.9.9.9"


def test_real_ip_header_ignored_from_untrusted_peer(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url), real_ip_header="X-Client-Address")
    c = make_client(gw.port)
    c.request("GET", "/", [("X-Client-Address", "9.9.9.9")])
    assert only(upstream.requests[0], "x-real-ip") == "127.0.0.1"


def test_hop_by_hop_headers_not_forwarded(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url))
    c = make_client(gw.port)
    c.request("GET", "/", [
        ("Connection", "keep-alive, X-Secret, x-other"),
        ("X-Secret", "s"), ("X-Other", "o"), ("X-Kept", "k"),
        ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"),
        ("Proxy", "http://evil"), ("Upgrade", "h2c"), ("Trailer", "X-T"),
        ("TE", "trailers, deflate"),
    ])
    req = upstream.requests[0]
    names = req.names()
    for dropped in ("x-secret", "x-other", "keep-alive", "proxy-connection", "proxy",
                    "upgrade", "trailer"):
        assert dropped not in names, f"{dropped} must not be forwarded"
    assert only(req, "x-kept") == "k"
    assert only(req, "connection") == "keep-alive"
    assert only(req, "te") == "trailers"


def test_te_without_trailers_not_forwarded(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url))
    c = make_client(gw.port)
    c.request("GET", "/", [("TE", "deflate")])
    assert "te" not in upstream.requests[0].names()


def test_end_to_end_headers_forwarded_in_order_with_duplicates(upstream, make_gateway,
                                                               make_client):
    gw = make_gateway(service_doc(upstream.url))
    c = make_client(gw.port)
    c.request("GET", "/", [("X-Multi", "a"), ("Cookie", "c=1"), ("X-Multi", "b"),
                           ("Accept", "text/html"), ("Content-Type", "x/y")])
    req = upstream.requests[0]
    assert req.all("x-multi") == ["a", "b"]
    assert only(req, "cookie") == "c=1"
    assert only(req, "accept") == "text/html"
    assert only(req, "content-type") == "x/y"


def test_host_without_preserve_host(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url, routes=[
        {"name": "r", "paths": ["/"], "preserve_host": False}]))
    c = make_client(gw.port)
    c.request("GET", "/", host="Client.Example:8443")
    assert only(upstream.requests[0], "host") == f"127.0.0.1:{upstream.port}"


def test_host_with_preserve_host(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url, routes=[
        {"name": "r", "paths": ["/"], "preserve_host": True}]))
    c = make_client(gw.port)
    c.request("GET", "/", host="Client.Example:8443")
    assert only(upstream.requests[0], "host") == "Client.Example:8443"


def test_host_for_hostname_service_default_port_omitted(upstream, make_gateway, make_client,
                                                        tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 backend.internal\n")
    gw = make_gateway(service_doc(f"http://backend.internal:{upstream.port}"),
                      dns_hostsfile=str(hosts))
    c = make_client(gw.port)
    assert c.request("GET", "/").status == 200
    assert only(upstream.requests[0], "host") == f"backend.internal:{upstream.port}"


# -- response headers (§2.9) ----------------------------------------------------------------

VIA = f"1.1 tollway/{__version__}"
SERVER = f"tollway/{__version__}"


def test_response_headers_default(make_upstream, make_gateway, make_client):
    up = make_upstream(respond(200, b"ok", [("X-Up", "1")]))
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    resp = c.request("GET", "/")
    assert resp.status == 200
    assert resp.header("via") == VIA
    assert resp.header("server") == SERVER
    assert re.fullmatch(r"\d+", resp.header("x-tollway-upstream-latency") or "")
    assert re.fullmatch(r"\d+", resp.header("x-tollway-proxy-latency") or "")
    assert re.fullmatch(r"[0-9a-f]{32}", resp.header("x-tollway-request-id") or "")
    assert resp.header("x-up") == "1"
    assert resp.header("date")
    # the request id sent upstream is the one returned
    assert up.requests[0].header("x-tollway-request-id") == resp.header("x-tollway-request-id")


def test_request_ids_distinct_across_batches(make_upstream, make_gateway, make_client):
    """Ids come 256 to a getrandom() read: 600 requests cross two refills, every id is 32
    hex digits, none repeats, and each is the one its request carried upstream."""
    up = make_upstream(respond(200, b"ok"))
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    ids = [c.request("GET", "/").header("x-tollway-request-id") or "" for _ in range(600)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == 600
    assert [r.header("x-tollway-request-id") for r in up.requests] == ids


def test_upstream_server_and_via_kept(make_upstream, make_gateway, make_client):
    up = make_upstream(respond(200, b"ok", [("Server", "origin/1.0"), ("Via", "1.0 cache")]))
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    resp = c.request("GET", "/")
    assert resp.all("server") == ["origin/1.0"]
    assert resp.all("via") == [f"1.0 cache, {VIA}"]


def test_upstream_date_passed_through(make_upstream, make_gateway, make_client):
    date = "Tue, 01 Jan 2030 00:00:00 GMT"
    up = make_upstream(respond(200, b"ok", [("Date", date)]))
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    assert c.request("GET", "/").all("date") == [date]


def test_response_headers_off(make_upstream, make_gateway, make_client):
    up = make_upstream(respond(200, b"ok"))
    gw = make_gateway(service_doc(up.url), headers="off")
    c = make_client(gw.port)
    resp = c.request("GET", "/")
    assert resp.status == 200
    for name in ("via", "server", "x-tollway-upstream-latency", "x-tollway-proxy-latency",
                 "x-tollway-request-id", "x-tollway-response-latency"):
        assert resp.header(name) is None, name
    # local replies too
    gw2 = make_gateway({"_format_version": "3.0"}, headers="off")
    c2 = make_client(gw2.port)
    resp = c2.request("GET", "/nothing")
    assert resp.status == 404
    assert resp.header("server") is None
    assert resp.header("x-tollway-response-latency") is None


def test_response_headers_server_tokens_only(make_upstream, make_gateway, make_client):
    up = make_upstream(respond(200, b"ok"))
    gw = make_gateway(service_doc(up.url), headers="server_tokens")
    c = make_client(gw.port)
    resp = c.request("GET", "/")
    assert resp.header("via") == VIA
    assert resp.header("server") == SERVER
    assert resp.header("x-tollway-upstream-latency") is None
    assert resp.header("x-tollway-proxy-latency") is None


def test_response_headers_latency_only(make_upstream, make_gateway, make_client):
    up = make_upstream(respond(200, b"ok"))
    gw = make_gateway(service_doc(up.url), headers="latency_tokens")
    c = make_client(gw.port)
    resp = c.request("GET", "/")
    assert resp.header("via") is None
    assert resp.header("server") is None
    assert resp.header("x-tollway-upstream-latency") is not None
    assert resp.header("x-tollway-proxy-latency") is not None


def test_local_reply_headers_default(make_gateway, make_client):
    gw = make_gateway({"_format_version": "3.0"})
    c = make_client(gw.port)
    resp = c.request("GET", "/nothing")
    assert resp.status == 404
    assert resp.header("server") == SERVER
    assert re.fullmatch(r"\d+", resp.header("x-tollway-response-latency") or "")
    assert resp.header("x-tollway-upstream-latency") is None
    assert resp.header("via") is None


def test_response_hop_by_hop_headers_not_forwarded(make_upstream, make_gateway, make_client):
    up = make_upstream(respond(200, b"ok", [("Keep-Alive", "timeout=5"),
                                            ("Proxy-Connection", "keep-alive"),
                                            ("Connection", "keep-alive"), ("X-End", "e")]))
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    resp = c.request("GET", "/")
    assert resp.header("keep-alive") is None
    assert resp.header("proxy-connection") is None
    assert resp.header("connection") is None
    assert resp.header("x-end") == "e"
    assert resp.all("content-length") == ["2"]


def test_header_names_in_any_spelling_each_time(make_upstream, make_gateway, make_client):
    # Names are looked up by spelling (learnt on first sight): every spelling of a hop-by-hop
    # or replaced name must be treated the same on its first request and on later ones.
    up = make_upstream(respond(200, b"ok", [("KEEP-alive", "timeout=5"), ("x-END", "e"),
                                            ("VIA", "1.1 up")]))
    gw = make_gateway(service_doc(up.url))
    c = make_client(gw.port)
    for i in range(3):
        resp = c.request("GET", "/", [("X-REAL-IP", "6.6.6.6"), ("x-Forwarded-HOST", "evil"),
                                      ("proxy-CONNECTION", "keep-alive"), ("X-kept", "k")])
        assert resp.header("keep-alive") is None
        assert resp.header("x-end") == "e"
        assert resp.header("via").startswith("1.1 up, ")  # the upstream's Via, then ours
        req = up.requests[i]
        assert only(req, "x-real-ip") == "127.0.0.1"
        assert only(req, "x-forwarded-host") != "evil"
        assert "proxy-connection" not in req.names()
        assert only(req, "x-kept") == "k"
