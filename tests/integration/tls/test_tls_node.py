"""`tollway start` with a TLS proxy listener: served by real worker processes (the default
certificate generated once under the prefix), and bad TLS settings stop the node."""

from __future__ import annotations

from pathlib import Path

import httpx
from node_support import Node, free_port
from tls_certs import handshake


def _config(upstream_port: int) -> dict[str, object]:
    return {"_format_version": "3.0",
            "services": [{"name": "s", "url": f"http://127.0.0.1:{upstream_port}",
                          "routes": [{"name": "r", "paths": ["/"]}]}]}


def test_node_serves_https_and_h2(tmp_path: Path, make_plain_upstream):
    up = make_plain_upstream()
    tls_port = free_port()
    node = Node(tmp_path / "node", config=_config(up.port), workers=2)
    node.env["TOLLWAY_PROXY_LISTEN"] = (f"127.0.0.1:{node.proxy_port}, "
                                        f"127.0.0.1:{tls_port} http2 ssl")
    node.start()
    try:
        with httpx.Client(verify=False, http2=True) as c:
            r = c.get(f"https://127.0.0.1:{tls_port}/hello")
            assert r.status_code == 200 and r.http_version == "HTTP/2"
        assert handshake(tls_port, "any.test")[0] == "localhost"
        assert (node.prefix / "ssl" / "tollway-default.crt").exists()
    finally:
        node.stop()


def test_bad_tls_settings_stop_the_node(tmp_path: Path):
    node = Node(tmp_path / "node", workers=1)
    node.env["TOLLWAY_PROXY_LISTEN"] = f"127.0.0.1:{node.proxy_port} ssl"
    node.env["TOLLWAY_SSL_CERT"] = str(tmp_path / "missing.crt")
    assert node.run() == 1
    assert "ssl_cert and ssl_cert_key must be set together" in node.stderr()
    node2 = Node(tmp_path / "node2", workers=1)
    node2.env["TOLLWAY_PROXY_LISTEN"] = f"127.0.0.1:{node2.proxy_port} ssl"
    node2.env["TOLLWAY_SSL_PROTOCOLS"] = "SSLv3"
    assert node2.run() == 1
    assert "ssl_protocols: expected some of" in node2.stderr()
