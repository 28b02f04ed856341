"""jwt credentials with a `jwks_uri` (beyond Kong): keys fetched from a local JWKS server
when needed, cached per worker, refreshed on an unknown kid at most once per interval, and
rotated without a restart."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from auth_plugins_support import AuthEnv
from jwt.algorithms import RSAAlgorithm
from jwt_tokens import rsa_pair, sign

from tollway.plugins.jwt import jwks


class JwksServer:
    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.hits = 0
        self.status = 200
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                data = json.dumps({"keys": server.keys}).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, *pairs: tuple[str, Any]) -> None:
        self.keys = [{**json.loads(RSAAlgorithm.to_jwk(private.public_key())), "kid": kid,
                      "alg": "RS256", "use": "sig"} for kid, private in pairs]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    s = JwksServer()
    yield s
    s.close()


def start(auth_env: AuthEnv, url: str) -> None:
    consumer = {"username": "svc", "jwt_secrets": [
        {"key": "issuer", "algorithm": "RS256", "jwks_uri": url}]}
    auth_env.start([{"name": "jwt", "config": {}}], [consumer])


def token(private: Any, kid: str, alg: str = "RS256") -> list[tuple[str, str]]:
    return [("Authorization",
             "Bearer " + sign({"iss": "issuer"}, private, alg, headers={"kid": kid}))]


def test_keys_fetched_once_and_cached(auth_env: AuthEnv, jwks_server: JwksServer) -> None:
    k1, _ = rsa_pair()
    jwks_server.publish(("k1", k1))
    start(auth_env, jwks_server.url)
    assert auth_env.request("/", token(k1, "k1")).status == 200
    assert auth_env.upstream_header("X-Credential-Identifier") == "issuer"
    assert auth_env.request("/", token(k1, "k1")).status == 200
    assert jwks_server.hits == 1
    other, _ = rsa_pair()
    r = auth_env.request("/", token(other, "k1"))
    assert (r.status, json.loads(r.body)) == (401, {"message": "Invalid signature"})


def test_rotation_refreshes_on_unknown_kid(auth_env: AuthEnv, jwks_server: JwksServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jwks, "MIN_REFRESH_INTERVAL", 0.0)
    k1, _ = rsa_pair()
    k2, _ = rsa_pair()
    jwks_server.publish(("k1", k1))
    start(auth_env, jwks_server.url)
    assert auth_env.request("/", token(k1, "k1")).status == 200
    jwks_server.publish(("k2", k2))  # the issuer rotates
    assert auth_env.request("/", token(k2, "k2")).status == 200
    assert jwks_server.hits == 2
    # k1 left the set: a token naming it fails after the refresh it triggers
    r = auth_env.request("/", token(k1, "k1"))
    assert (r.status, json.loads(r.body)) == (401, {"message": "Invalid key/secret"})


def test_unknown_kid_refresh_is_rate_limited(auth_env: AuthEnv, jwks_server: JwksServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jwks, "MIN_REFRESH_INTERVAL", 3600.0)
    k1, _ = rsa_pair()
    jwks_server.publish(("k1", k1))
    start(auth_env, jwks_server.url)
    assert auth_env.request("/", token(k1, "k1")).status == 200
    for _ in range(5):
        r = auth_env.request("/", token(k1, "unknown"))
        assert json.loads(r.body) == {"message": "Invalid key/secret"}
    assert jwks_server.hits == 1
    assert auth_env.request("/", token(k1, "k1")).status == 200


def test_fetch_failure_is_401_then_recovers(auth_env: AuthEnv, jwks_server: JwksServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jwks, "MIN_REFRESH_INTERVAL", 0.0)
    k1, _ = rsa_pair()
    jwks_server.publish(("k1", k1))
    jwks_server.status = 500
    start(auth_env, jwks_server.url)
    r = auth_env.request("/", token(k1, "k1"))
    assert (r.status, json.loads(r.body)) == (401, {"message": "Invalid key/secret"})
    jwks_server.status = 200
    assert auth_env.request("/", token(k1, "k1")).status == 200


def test_token_alg_must_match_credential(auth_env: AuthEnv, jwks_server: JwksServer) -> None:
    k1, _ = rsa_pair()
    jwks_server.publish(("k1", k1))
    start(auth_env, jwks_server.url)
    r = auth_env.request("/", token(k1, "k1", "RS512"))
    assert json.loads(r.body) == {"message": "Invalid algorithm"}
    assert jwks_server.hits == 0


def test_config_keeps_worker_cache_across_swaps(auth_env: AuthEnv,
                                                jwks_server: JwksServer) -> None:
    k1, _ = rsa_pair()
    jwks_server.publish(("k1", k1))
    start(auth_env, jwks_server.url)
    assert auth_env.request("/", token(k1, "k1")).status == 200
    consumer = {"username": "svc2", "jwt_secrets": [
        {"key": "issuer", "algorithm": "RS256", "jwks_uri": jwks_server.url}]}
    auth_env.swap([{"name": "jwt", "config": {}}], [consumer])
    assert auth_env.request("/", token(k1, "k1")).status == 200
    assert auth_env.upstream_header("X-Consumer-Username") == "svc2"
    assert jwks_server.hits == 1
