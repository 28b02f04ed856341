"""The proxy's TLS listener: certificates chosen by SNI (exact, wildcard, default), the
settings' default certificate, config swaps, https-only routes, X-Forwarded-Proto."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
from dataplane_helpers import json_error
from tls_certs import CA, handshake, peer_cn


def _doc(upstream_url: str, certificates: list[dict[str, Any]] | None = None,
         routes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"_format_version": "3.0",
            "services": [{"name": "svc", "url": upstream_url,
                          "routes": routes or [{"name": "all", "paths": ["/"]}]}],
            "certificates": certificates or []}


def _cert(ca: CA, cn: str, snis: list[str], names: list[str] | None = None) -> dict[str, Any]:
    pem = ca.issue(cn, names or snis)
    return {"cert": pem.cert, "key": pem.key, "snis": [{"name": n} for n in snis]}


def test_two_certificates_two_snis_each(ca, make_plain_upstream, make_tls_gateway):
    up = make_plain_upstream()
    gw = make_tls_gateway(_doc(up.url, [
        _cert(ca, "alpha", ["alpha.test", "www.alpha.test"]),
        _cert(ca, "beta", ["beta.test", "api.beta.test"]),
    ]))
    for name, cn in [("alpha.test", "alpha"), ("www.alpha.test", "alpha"),
                     ("beta.test", "beta"), ("api.beta.test", "beta"),
                     ("BETA.test", "beta")]:
        assert handshake(gw.tls_port, name)[0] == cn, name


def test_unknown_or_missing_sni_gets_the_generated_default(ca, make_plain_upstream,
                                                           make_tls_gateway, tmp_path):
    up = make_plain_upstream()
    gw = make_tls_gateway(_doc(up.url, [_cert(ca, "alpha", ["alpha.test"])]))
    assert handshake(gw.tls_port, "other.test")[0] == "localhost"
    assert handshake(gw.tls_port, None)[0] == "localhost"
    ssl_dir = tmp_path / "prefix" / "ssl"
    crt = (ssl_dir / "tollway-default.crt").read_bytes()
    assert (ssl_dir / "tollway-default.key").stat().st_mode & 0o077 == 0  # key not readable
    # Generated once: a second worker on the same prefix serves the same certificate.
    make_tls_gateway(_doc(up.url))
    assert (ssl_dir / "tollway-default.crt").read_bytes() == crt


def test_wildcard_snis_follow_kong(ca, make_plain_upstream, make_tls_gateway):
    up = make_plain_upstream()
    gw = make_tls_gateway(_doc(up.url, [
        _cert(ca, "exact", ["api.wild.test"]),
        _cert(ca, "prefix", ["*.wild.test"]),
        _cert(ca, "suffix", ["shop.*"]),
    ]))
    assert handshake(gw.tls_port, "api.wild.test")[0] == "exact"  # exact beats wildcard
    assert handshake(gw.tls_port, "web.wild.test")[0] == "prefix"
    assert handshake(gw.tls_port, "shop.example")[0] == "suffix"
    # Kong replaces one label: *.wild.test does not cover a.b.wild.test
    assert handshake(gw.tls_port, "a.b.wild.test")[0] == "localhost"


def test_catch_all_sni_replaces_the_default(ca, make_plain_upstream, make_tls_gateway):
    up = make_plain_upstream()
    gw = make_tls_gateway(_doc(up.url, [_cert(ca, "catch-all", ["*"], ["catch.test"]),
                                        _cert(ca, "alpha", ["alpha.test"])]))
    assert handshake(gw.tls_port, "alpha.test")[0] == "alpha"
    assert handshake(gw.tls_port, "nothing.test")[0] == "catch-all"


def test_ssl_cert_setting_is_the_default(ca, make_plain_upstream, make_tls_gateway,
                                         tmp_path: Path):
    up = make_plain_upstream()
    cert, key = ca.issue("configured-default", ["default.test"]).write(tmp_path, "default")
    gw = make_tls_gateway(_doc(up.url), ssl_cert=cert, ssl_cert_key=key)
    assert handshake(gw.tls_port, "whatever.test")[0] == "configured-default"
    assert not (tmp_path / "prefix" / "ssl").exists()  # nothing generated


def test_swap_serves_new_certificates(ca, make_plain_upstream, make_tls_gateway):
    up = make_plain_upstream()
    gw = make_tls_gateway(_doc(up.url))
    assert handshake(gw.tls_port, "late.test")[0] == "localhost"
    gw.swap(_doc(up.url, [_cert(ca, "late", ["late.test"])]))
    assert handshake(gw.tls_port, "late.test")[0] == "late"
    gw.swap(_doc(up.url))
    assert handshake(gw.tls_port, "late.test")[0] == "localhost"


def test_alpn_offers_h2_only_with_the_http2_flag(make_plain_upstream, make_tls_gateway):
    up = make_plain_upstream()
    with_h2 = make_tls_gateway(_doc(up.url))
    without = make_tls_gateway(_doc(up.url), http2=False)
    assert handshake(with_h2.tls_port, None, ["h2", "http/1.1"])[1] == "h2"
    assert handshake(without.tls_port, None, ["h2", "http/1.1"])[1] == "http/1.1"


def test_https_only_route(make_plain_upstream, make_tls_gateway):
    up = make_plain_upstream()
    gw = make_tls_gateway(_doc(up.url, routes=[
        {"name": "secure", "paths": ["/secure"], "protocols": ["https"]},
        {"name": "moved", "paths": ["/moved"], "protocols": ["https"],
         "https_redirect_status_code": 301},
    ]))
    with httpx.Client(verify=False) as c:
        r = c.get(gw.tls_url + "/secure/x?a=1")
        assert r.status_code == 200 and r.text == "/x?a=1"  # strip_path
        assert up.requests[-1].header("x-forwarded-proto") == "https"
        assert up.requests[-1].header("x-forwarded-port") == str(gw.tls_port)

        r = c.get(gw.http_url + "/secure/x")
        assert r.status_code == 426
        assert json_error("Please use HTTPS protocol").fullmatch(r.text)
        assert r.headers["upgrade"] == "TLS/1.2, HTTP/1.1"

        r = c.get(gw.http_url + "/moved/y?b=2", headers={"Host": "gw.test"})
        assert r.status_code == 301
        assert r.headers["location"] == "https://gw.test/moved/y?b=2"
        assert len(up.requests) == 1


def test_http11_keepalive_over_tls(make_plain_upstream, make_tls_gateway):
    up = make_plain_upstream()
    gw = make_tls_gateway(_doc(up.url))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", gw.tls_port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="h1.test") as tls:
        assert peer_cn(tls.getpeercert(binary_form=True) or b"") == "localhost"
        tls.sendall(b"GET /one HTTP/1.1\r\nHost: h1.test\r\n\r\n"
                    b"GET /two HTTP/1.1\r\nHost: h1.test\r\n\r\n")
        data = b""
        while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"/two"):
            chunk = tls.recv(65536)
            assert chunk, data
            data += chunk
    assert data.index(b"\r\n\r\n/one") < data.index(b"\r\n\r\n/two")
    assert up.paths() == ["/one", "/two"]
