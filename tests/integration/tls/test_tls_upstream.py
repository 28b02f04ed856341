"""https upstreams: tls_verify against ca_certificates, a wrong CA, tls_verify_depth, and
a client certificate presented to an upstream that requires one.

The contexts (`tollway.dataplane.tls.service_context`) are tested against a real TLS
server, directly and through the gateway (the snapshot builds each https service's context
with `service_context`)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dataplane_helpers import LoopThread, read_request, response_bytes
from tls_certs import CA, peer_cn

from tollway.dataplane.tls import TLSError, service_context


class TLSUpstream:
    """An HTTPS origin on 127.0.0.1 answering 200 with the client certificate's CN (or
    `none`)."""

    def __init__(self, lt: LoopThread, ca: CA, tmp: Path, require_client_cert: bool) -> None:
        cert, key = ca.issue("localhost", ["localhost"]).write(tmp, "upstream")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=ca.pem)
        self.handshakes = 0

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.handshakes += 1
            sslobj = writer.get_extra_info("ssl_object")
            der = sslobj.getpeercert(binary_form=True) if sslobj else None
            who = peer_cn(der) if der else "none"
            try:
                while True:
                    await read_request(reader, 0)
                    writer.write(response_bytes(200, who.encode()))
                    await writer.drain()
            except Exception:
                writer.close()

        async def start() -> asyncio.AbstractServer:
            return await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ctx)

        self.lt = lt
        self.server = lt.run(start())
        self.port = self.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        self.lt.call(self.server.close)

    def fetch(self, ctx: ssl.SSLContext) -> str:
        async def go() -> str:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", self.port, ssl=ctx, server_hostname="localhost")
            writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = await reader.read(65536)
            writer.close()
            return data.split(b"\r\n\r\n", 1)[1].decode()
        return asyncio.run(go())


@pytest.fixture
def tls_origin(ca: CA, tls_upstream_loop: LoopThread, tmp_path: Path
               ) -> Iterator[TLSUpstream]:
    up = TLSUpstream(tls_upstream_loop, ca, tmp_path, require_client_cert=False)
    yield up
    up.close()


@pytest.fixture
def mtls_origin(ca: CA, tls_upstream_loop: LoopThread, tmp_path: Path
                ) -> Iterator[TLSUpstream]:
    up = TLSUpstream(tls_upstream_loop, ca, tmp_path, require_client_cert=True)
    yield up
    up.close()


def _entities(ca_pems: dict[str, str], certs: dict[str, Any] | None = None
              ) -> dict[str, list[dict[str, Any]]]:
    return {"ca_certificates": [{"id": k, "cert": v} for k, v in ca_pems.items()],
            "certificates": [{"id": k, "cert": c.cert, "key": c.key}
                             for k, c in (certs or {}).items()]}


def test_verify_with_the_right_ca(ca, tls_origin):
    ctx = service_context({"name": "s", "tls_verify": True, "ca_certificates": ["ca-1"]},
                          _entities({"ca-1": ca.pem}))
    assert tls_origin.fetch(ctx) == "none"


def test_verify_with_a_wrong_ca_fails(tls_origin):
    other = CA("some other CA")
    ctx = service_context({"name": "s", "tls_verify": True, "ca_certificates": ["ca-2"]},
                          _entities({"ca-2": other.pem}))
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_origin.fetch(ctx)


def test_no_verification_by_default(tls_origin):
    # Kong's proxy_ssl_verify is off: tls_verify null accepts any certificate
    assert tls_origin.fetch(service_context({"name": "s"}, _entities({}))) == "none"


def test_verify_depth_counts_intermediates(ca, tls_upstream_loop, tmp_path):
    # root → intermediate → leaf: one intermediate, so depth 0 refuses and 1 accepts
    origin = TLSUpstream(tls_upstream_loop, CA("intermediate", parent=ca), tmp_path, False)
    try:
        for depth, ok in ((0, False), (1, True), (None, True)):
            svc = {"name": "s", "tls_verify": True, "tls_verify_depth": depth,
                   "ca_certificates": ["ca-1"]}
            ctx = service_context(svc, _entities({"ca-1": ca.pem}))
            if ok:
                assert origin.fetch(ctx) == "none"
            else:
                with pytest.raises(ssl.SSLCertVerificationError, match="too long"):
                    origin.fetch(ctx)
    finally:
        origin.close()


def test_client_certificate_is_presented(ca, mtls_origin):
    client = ca.issue("gateway-client", client=True)
    svc = {"name": "s", "tls_verify": True, "ca_certificates": ["ca-1"],
           "client_certificate": {"id": "cert-1"}}
    ctx = service_context(svc, _entities({"ca-1": ca.pem}, {"cert-1": client}))
    assert mtls_origin.fetch(ctx) == "gateway-client"
    without = service_context({"name": "s", "tls_verify": True, "ca_certificates": ["ca-1"]},
                              _entities({"ca-1": ca.pem}))
    with pytest.raises((ssl.SSLError, ConnectionError, IndexError)):
        mtls_origin.fetch(without)


def test_missing_references_name_the_service():
    with pytest.raises(TLSError, match="service billing: ca_certificate nope not found"):
        service_context({"name": "billing", "tls_verify": True, "ca_certificates": ["nope"]},
                        _entities({}))
    with pytest.raises(TLSError, match="service billing: client_certificate c9 not found"):
        service_context({"name": "billing", "client_certificate": {"id": "c9"}},
                        _entities({}))


# -- through the gateway ----------------------------------------------------------------------
def _gateway_doc(port: int, ca_pem: str, client: Any = None) -> dict[str, Any]:
    svc: dict[str, Any] = {"name": "secure", "url": f"https://localhost:{port}",
                           "tls_verify": True,
                           "ca_certificates": ["6f6bd3c4-6a4b-4b8f-8e4b-0c6a5e1b1a01"],
                           "routes": [{"name": "r", "paths": ["/"]}]}
    doc: dict[str, Any] = {"_format_version": "3.0", "services": [svc],
                           "ca_certificates": [{"id": "6f6bd3c4-6a4b-4b8f-8e4b-0c6a5e1b1a01",
                                                "cert": ca_pem}]}
    if client is not None:
        doc["certificates"] = [{"id": "0b0e4f3e-2f57-4e1c-9a55-43f7b0c9e001",
                                "cert": client.cert, "key": client.key}]
        svc["client_certificate"] = "0b0e4f3e-2f57-4e1c-9a55-43f7b0c9e001"
    return doc


def _get(gw: Any) -> httpx.Response:
    return httpx.get(gw.http_url + "/", timeout=10)


def test_gateway_verifies_the_upstream_with_ca_certificates(ca, tls_origin, make_tls_gateway):
    gw = make_tls_gateway(_gateway_doc(tls_origin.port, ca.pem),
                          dns_hostsfile=_hosts(tls_origin))
    assert _get(gw).status_code == 200


def test_gateway_wrong_ca_is_a_502(tls_origin, make_tls_gateway):
    gw = make_tls_gateway(_gateway_doc(tls_origin.port, CA("wrong").pem),
                          dns_hostsfile=_hosts(tls_origin))
    assert _get(gw).status_code == 502


def test_gateway_presents_the_client_certificate(ca, mtls_origin, make_tls_gateway):
    client = ca.issue("gateway-client", client=True)
    gw = make_tls_gateway(_gateway_doc(mtls_origin.port, ca.pem, client),
                          dns_hostsfile=_hosts(mtls_origin))
    r = _get(gw)
    assert r.status_code == 200 and r.text == "gateway-client"


def _hosts(origin: TLSUpstream) -> str:
    path = Path(f"/tmp/tollway-tls-hosts-{origin.port}")
    path.write_text("127.0.0.1 localhost\n")
    return str(path)


# -- pooled connections and TLS settings ----------------------------------------------------
CA_ID = "6f6bd3c4-6a4b-4b8f-8e4b-0c6a5e1b1a01"
CERT_A = "0b0e4f3e-2f57-4e1c-9a55-43f7b0c9e0aa"
CERT_B = "0b0e4f3e-2f57-4e1c-9a55-43f7b0c9e0bb"


def _two_services(port: int, loose: dict[str, Any], strict: dict[str, Any],
                  **extra: Any) -> dict[str, Any]:
    """Two https services to the same address and name, /loose and /strict."""
    return {"_format_version": "3.0", **extra, "services": [
        {"name": "loose", "url": f"https://localhost:{port}", **loose,
         "routes": [{"name": "loose", "paths": ["/loose"]}]},
        {"name": "strict", "url": f"https://localhost:{port}", **strict,
         "routes": [{"name": "strict", "paths": ["/strict"]}]}]}


def test_an_unverified_connection_is_not_reused_by_a_verifying_service(
        tls_origin, make_tls_gateway):
    # /loose does not verify and leaves a pooled connection; /strict verifies against a CA
    # that did not sign the origin's certificate and must still get its 502
    doc = _two_services(tls_origin.port, {}, {"tls_verify": True, "ca_certificates": [CA_ID]},
                        ca_certificates=[{"id": CA_ID, "cert": CA("wrong").pem}])
    gw = make_tls_gateway(doc, dns_hostsfile=_hosts(tls_origin))
    with httpx.Client(timeout=10) as client:
        assert client.get(gw.http_url + "/loose").status_code == 200
        assert client.get(gw.http_url + "/strict").status_code == 502
        assert client.get(gw.http_url + "/loose").status_code == 200


def test_each_client_certificate_gets_its_own_connections(ca, mtls_origin, make_tls_gateway):
    a, b = ca.issue("client-a", client=True), ca.issue("client-b", client=True)
    doc = _two_services(mtls_origin.port, {"client_certificate": CERT_A},
                        {"client_certificate": CERT_B},
                        certificates=[{"id": CERT_A, "cert": a.cert, "key": a.key},
                                      {"id": CERT_B, "cert": b.cert, "key": b.key}])
    gw = make_tls_gateway(doc, dns_hostsfile=_hosts(mtls_origin))
    with httpx.Client(timeout=10) as client:
        for _ in range(3):  # keep-alive connections are pooled between the requests
            assert client.get(gw.http_url + "/loose").text == "client-a"
            assert client.get(gw.http_url + "/strict").text == "client-b"


def test_an_https_service_over_an_upstream_entity_speaks_tls(ca, tls_origin, make_tls_gateway):
    doc = {"_format_version": "3.0",
           "upstreams": [{"name": "backend", "host_header": "localhost",
                          "targets": [{"target": f"127.0.0.1:{tls_origin.port}"}]}],
           "ca_certificates": [{"id": CA_ID, "cert": ca.pem}],
           "services": [{"name": "s", "protocol": "https", "host": "backend", "port": 443,
                         "tls_verify": True, "ca_certificates": [CA_ID],
                         "routes": [{"name": "r", "paths": ["/"]}]}]}
    gw = make_tls_gateway(doc)
    r = _get(gw)
    assert r.status_code == 200 and r.text == "none"  # verified against "localhost"
