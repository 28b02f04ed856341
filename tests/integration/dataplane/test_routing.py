"""The router seen through the proxy: Kong's 404/503/426 replies, https redirects, and the
upstream path (v0 joining, §2.6) with the query string preserved."""

from __future__ import annotations

import pytest
from dataplane_helpers import json_error, service_doc


def test_no_route_404_json(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url, routes=[{"name": "r", "paths": ["/only"]}]))
    c = make_client(gw.port)
    resp = c.request("GET", "/elsewhere")
    assert resp.status == 404
    assert resp.header("content-type") == "application/json; charset=utf-8"
    assert json_error("no Route matched with those values").fullmatch(resp.text), resp.text
    assert resp.header("content-length") == str(len(resp.body))
    assert upstream.requests == []
    # keep-alive survives a local reply
    assert c.request("GET", "/only").status == 200


def test_no_route_404_text_when_asked(make_gateway, make_client):
    gw = make_gateway({"_format_version": "3.0"})
    c = make_client(gw.port)
    resp = c.request("GET", "/", [("Accept", "text/plain")])
    assert resp.status == 404
    assert resp.header("content-type") == "text/plain; charset=utf-8"
    assert resp.text.startswith("no Route matched with those values\nrequest_id: ")


def test_no_route_head_has_no_body(make_gateway, make_client):
    gw = make_gateway({"_format_version": "3.0"})
    c = make_client(gw.port)
    resp = c.request("HEAD", "/")
    assert resp.status == 404
    assert c.request("GET", "/").status == 404  # framing intact: no stray body bytes


def test_route_without_service_503(make_gateway, make_client):
    gw = make_gateway({"_format_version": "3.0",
                       "routes": [{"name": "orphan", "paths": ["/orphan"]}]})
    c = make_client(gw.port)
    resp = c.request("GET", "/orphan")
    assert resp.status == 503
    assert json_error("no Service found with those values").fullmatch(resp.text), resp.text


def test_disabled_service_404(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url, enabled=False))
    c = make_client(gw.port)
    assert c.request("GET", "/").status == 404


def test_https_only_route_426(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url, routes=[
        {"name": "secure", "paths": ["/s"], "protocols": ["https"]}]))
    c = make_client(gw.port)
    resp = c.request("GET", "/s")
    assert resp.status == 426
    assert json_error("Please use HTTPS protocol").fullmatch(resp.text), resp.text
    assert resp.header("connection") == "Upgrade"
    assert resp.header("upgrade") == "TLS/1.2, HTTP/1.1"
    assert upstream.requests == []


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_https_only_route_redirect(upstream, make_gateway, make_client, code):
    gw = make_gateway(service_doc(upstream.url, routes=[
        {"name": "secure", "paths": ["/s"], "protocols": ["https"],
         "https_redirect_status_code": code}]))
    c = make_client(gw.port)
    resp = c.request("GET", "/s/page?a=1&b", host="shop.example:8000")
    assert resp.status == code
    assert resp.header("location") == "https://shop.example/s/page?a=1&b"
    assert resp.body == b""


def test_https_route_trusted_x_forwarded_proto_passes(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url, routes=[
        {"name": "secure", "paths": ["/s"], "protocols": ["https"]}]),
        trusted_ips="127.0.0.1/32")
    c = make_client(gw.port)
    resp = c.request("GET", "/s", [("X-Forwarded-Proto", "https")])
    assert resp.status == 200, "a trusted peer's X-Forwarded-Proto: https satisfies the route"


def test_https_route_untrusted_x_forwarded_proto_ignored(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url, routes=[
        {"name": "secure", "paths": ["/s"], "protocols": ["https"]}]))
    c = make_client(gw.port)
    assert c.request("GET", "/s", [("X-Forwarded-Proto", "https")]).status == 426


# (service path, route path, strip_path, request target, upstream target) — §2.6 examples
PATHS = [
    (None, "/api", True, "/api/users", "/users"),
    (None, "/api", True, "/api", "/"),
    ("/v2", "/api", True, "/api/users", "/v2/users"),
    ("/v2", "/api", True, "/apix", "/v2/x"),
    ("/v2", "/api", True, "/api/", "/v2/"),
    ("/v2", "/api", True, "/api", "/v2"),
    ("/v2/", "/api", True, "/api/users", "/v2/users"),
    ("/v2/", "/api", True, "/api", "/v2"),
    ("/v2", "/api", False, "/api/users", "/v2/api/users"),
    (None, "/api", False, "/api/users", "/api/users"),
    ("/v2", "/", False, "/", "/v2"),
    ("/v2", "~/ver/\\d+", True, "/ver/12/rest", "/v2/rest"),
    (None, "/api", True, "/api/users?q=1&r=%20x", "/users?q=1&r=%20x"),
    (None, "/api", True, "/api/users?", "/users?"),
    ("/v2", "/api", False, "/api?a=b", "/v2/api?a=b"),
    (None, "/api", True, "/api/a%20b", "/a%20b"),
    (None, "/api", True, "/api/a/../b", "/b"),
    (None, "/api", True, "/api//x", "/x"),
]


@pytest.mark.parametrize(("svc_path", "route_path", "strip", "target", "expected"), PATHS)
def test_upstream_path(upstream, make_gateway, make_client, svc_path, route_path, strip,
                       target, expected):
    url = upstream.url + (svc_path or "")
    gw = make_gateway(service_doc(url, routes=[
        {"name": "r", "paths": [route_path], "strip_path": strip}]))
    c = make_client(gw.port)
    resp = c.request("GET", target)
    assert resp.status == 200, resp.text
    assert upstream.paths() == [expected]


def test_method_and_host_routing(make_upstream, make_gateway, make_client):
    a, b = make_upstream(), make_upstream()
    doc = {"_format_version": "3.0", "services": [
        {"name": "a", "url": a.url, "routes": [{"name": "ra", "hosts": ["a.example"]}]},
        {"name": "b", "url": b.url, "routes": [{"name": "rb", "methods": ["POST"],
                                                "paths": ["/"]}]},
    ]}
    gw = make_gateway(doc)
    c = make_client(gw.port)
    assert c.request("GET", "/x", host="a.example").status == 200
    assert c.request("POST", "/y", body=b"1", host="b.example").status == 200
    assert c.request("GET", "/z", host="b.example").status == 404
    assert a.paths() == ["/x"]
    assert b.paths() == ["/y"]


def test_absolute_form_request_target(upstream, make_gateway, make_client):
    gw = make_gateway(service_doc(upstream.url, routes=[{"name": "r", "hosts": ["abs.example"]}]))
    c = make_client(gw.port)
    resp = c.request("GET", "http://abs.example/p?q=1", host="other.example")
    assert resp.status == 200
    assert upstream.paths() == ["/p?q=1"]
