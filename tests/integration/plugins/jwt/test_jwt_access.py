"""jwt through a real gateway socket: every 401 body of §3.2 with its WWW-Authenticate,
token sources, algorithms, claims, anonymous, run_on_preflight, consumer headers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from auth_plugins_support import AuthEnv
from cryptography.hazmat.primitives.asymmetric import ec
from jwt_tokens import b64, ec_pair, now, raw_token, rsa_pair, sign

SECRET = "alice-secret"
ALICE = {"username": "alice", "custom_id": "a-1",
         "jwt_secrets": [{"key": "alice-iss", "secret": SECRET}]}
BOB = {"username": "bob", "jwt_secrets": [{"key": "bob-iss", "secret": "bob-secret"}]}
ANON = {"username": "anon"}
INVALID = 'Bearer error="invalid_token"'


def jwt_plugin(**config: Any) -> dict[str, Any]:
    return {"name": "jwt", "config": config}


def bearer(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


def alice_token(**claims: Any) -> str:
    return sign({"iss": "alice-iss", **claims}, SECRET)


def body(r: Any) -> Any:
    return json.loads(r.body)


def test_seed_config_no_token_and_invalid_token(auth_env: AuthEnv) -> None:
    auth_env.start([jwt_plugin(key_claim_name="iss", secret_is_base64=False)], [ALICE])
    r = auth_env.request("/api/users")
    assert (r.status, body(r)) == (401, {"message": "Unauthorized"})
    assert r.header("WWW-Authenticate") == "Bearer"
    assert r.header("Content-Type") == "application/json; charset=utf-8"
    r = auth_env.request("/api/users", bearer("invalid_token"))
    assert (r.status, body(r)) == (401, {"message": "Bad token; invalid JSON"})
    assert r.header("WWW-Authenticate") == INVALID
    assert auth_env.upstream.requests == []


def test_valid_hs256_token_sets_consumer_headers(auth_env: AuthEnv) -> None:
    gw = auth_env.start([jwt_plugin()], [ALICE, BOB])
    token = alice_token()
    r = auth_env.request("/", [*bearer(token), ("X-Anonymous-Consumer", "true"),
                               ("X-Consumer-ID", "spoofed")])
    assert r.status == 200
    alice = next(c for c in gw.config.entities["consumers"] if c["username"] == "alice")
    assert auth_env.upstream_header("X-Consumer-ID") == alice["id"]
    assert auth_env.upstream_header("X-Consumer-Custom-ID") == "a-1"
    assert auth_env.upstream_header("X-Consumer-Username") == "alice"
    assert auth_env.upstream_header("X-Credential-Identifier") == "alice-iss"
    assert auth_env.upstream_header("X-Anonymous-Consumer") is None
    # the token is not removed
    assert auth_env.upstream_header("Authorization") == f"Bearer {token}"
    # the same token again (served from the verified-token cache) gives the same answer
    assert auth_env.request("/", bearer(token)).status == 200
    assert auth_env.upstream_header("X-Consumer-Username") == "alice"


def test_a_token_seen_before_takes_the_shortcut_with_the_same_headers(
        auth_env: AuthEnv) -> None:
    gw = auth_env.start([jwt_plugin()], [ALICE, BOB])
    token = alice_token()
    assert auth_env.request("/", bearer(token)).status == 200
    first = {h: auth_env.upstream_header(h) for h in (
        "X-Consumer-ID", "X-Consumer-Custom-ID", "X-Consumer-Username",
        "X-Credential-Identifier", "X-Anonymous-Consumer")}
    plugin = next(iter(gw.state.snapshot.chains.values())).access[0].default
    assert plugin is not None and plugin.plain  # type: ignore[attr-defined]
    entry = plugin.by_header[f"Bearer {token}".encode()]  # type: ignore[attr-defined]
    assert entry[2] is not None  # its consumer's headers, made once
    # access's shortcut: the same headers, spoofed ones still cleared
    r = auth_env.request("/", [*bearer(token), ("X-Anonymous-Consumer", "true"),
                               ("X-Consumer-Username", "mallory")])
    assert r.status == 200
    assert {h: auth_env.upstream_header(h) for h in first} == first
    assert first["X-Consumer-Username"] == "alice" and first["X-Anonymous-Consumer"] is None
    # a query string (uri_param_names defaults to jwt) takes the full path, same answer
    assert auth_env.request("/?page=2", bearer(token)).status == 200
    assert auth_env.upstream_header("X-Consumer-Username") == "alice"
    r = auth_env.request("/?jwt=" + sign({"iss": "bob-iss"}, "bob-secret"), bearer(token))
    assert (r.status, body(r)) == (401, {"message": "Multiple tokens provided"})


@pytest.mark.parametrize(("token", "message"), [
    ("a.b", "Bad token; invalid JSON"),
    (raw_token({"alg": "HS256"}, {"iss": "x"}).replace(".", "!", 1), "Bad token; invalid JSON"),
    (raw_token({"alg": "none"}, {"iss": "alice-iss"}, b""), "Bad token; invalid alg"),
    (raw_token({"typ": "JWT"}, {"iss": "alice-iss"}), "Bad token; invalid alg"),
    (raw_token({"alg": "HS256"}, None), "Bad token; invalid claims"),
    (raw_token({"alg": "HS256"}, {"iss": "alice-iss"}) + ".x", "Bad token; invalid signature"),
    (raw_token({"alg": "HS256"}, {"sub": "x"}), "No mandatory 'iss' in claims"),
    (raw_token({"alg": "HS256"}, {"iss": ""}), "Invalid 'iss' in claims"),
    (raw_token({"alg": "HS256"}, {"iss": "nobody"}), "No credentials found for given 'iss'"),
    (raw_token({"alg": "HS384"}, {"iss": "alice-iss"}), "Invalid algorithm"),
    (raw_token({"alg": "HS256"}, {"iss": "alice-iss"}), "Invalid signature"),
    # signed for bob, claiming to be alice
    (sign({"iss": "alice-iss"}, "bob-secret"), "Invalid signature"),
])
def test_bad_tokens(auth_env: AuthEnv, token: str, message: str) -> None:
    auth_env.start([jwt_plugin()], [ALICE, BOB])
    r = auth_env.request("/", bearer(token))
    assert (r.status, body(r)) == (401, {"message": message})
    assert r.header("WWW-Authenticate") == INVALID


def test_key_claim_falls_back_to_header_and_custom_claim_name(auth_env: AuthEnv) -> None:
    auth_env.start([jwt_plugin(key_claim_name="kid")], [ALICE])
    token = sign({"sub": "x"}, SECRET, headers={"kid": "alice-iss"})
    assert auth_env.request("/", bearer(token)).status == 200
    r = auth_env.request("/", bearer(alice_token()))
    assert body(r) == {"message": "No mandatory 'kid' in claims"}


def test_token_sources_and_multiple_tokens(auth_env: AuthEnv) -> None:
    auth_env.start([jwt_plugin(cookie_names=["session"], header_names=["authorization",
                                                                       "x-token"])], [ALICE])
    token, other = alice_token(), alice_token(n=1)
    assert auth_env.request(f"/?jwt={token}").status == 200
    assert auth_env.request("/", [("Cookie", f"a=b; session={token}")]).status == 200
    assert auth_env.request("/", [("X-Token", f"bearer {token}")]).status == 200
    # identical tokens from several places collapse into one
    assert auth_env.request(f"/?jwt={token}", bearer(token)).status == 200
    r = auth_env.request(f"/?jwt={token}", bearer(other))
    assert body(r) == {"message": "Multiple tokens provided"}
    assert r.header("WWW-Authenticate") == INVALID
    # a header without the Bearer scheme is ignored
    r = auth_env.request("/", [("Authorization", f"Basic {token}")])
    assert body(r) == {"message": "Unauthorized"}
    r = auth_env.request("/?jwt")
    assert body(r) == {"message": "Unrecognizable token"}
    assert auth_env.request("/?jwt=").status == 401


def test_claims_to_verify(auth_env: AuthEnv) -> None:
    auth_env.start([jwt_plugin(claims_to_verify=["exp", "nbf"])], [ALICE])
    t = now()
    assert auth_env.request("/", bearer(alice_token(exp=t + 60, nbf=t - 1))).status == 200
    r = auth_env.request("/", bearer(alice_token(exp=t - 1, nbf=t + 60)))
    assert (r.status, body(r)) == (401, {"exp": "token expired", "nbf": "token not valid yet"})
    assert r.header("WWW-Authenticate") == INVALID
    r = auth_env.request("/", bearer(alice_token(exp="soon")))
    assert body(r) == {"exp": "must be a number", "nbf": "must be a number"}


def test_expired_token_rejected_after_being_cached(auth_env: AuthEnv) -> None:
    auth_env.start([jwt_plugin(claims_to_verify=["exp"])], [ALICE])
    token = alice_token(exp=now() + 1)
    assert auth_env.request("/", bearer(token)).status == 200
    # the verified-token cache keeps the signature result only: exp is checked every time
    gw = auth_env.gw
    assert gw is not None
    plugin = next(iter(gw.state.snapshot.chains.values())).access[0].default
    assert plugin is not None
    cached = plugin.verified[token][1]  # type: ignore[attr-defined]
    cached.claims["exp"] = now() - 1
    r = auth_env.request("/", bearer(token))
    assert body(r) == {"exp": "token expired"}


def test_maximum_expiration(auth_env: AuthEnv) -> None:
    auth_env.start([jwt_plugin(claims_to_verify=["exp"], maximum_expiration=60)], [ALICE])
    assert auth_env.request("/", bearer(alice_token(exp=now() + 30))).status == 200
    r = auth_env.request("/", bearer(alice_token(exp=now() + 3600)))
    assert body(r) == {"exp": "exceeds maximum allowed expiration"}


def test_secret_is_base64(auth_env: AuthEnv) -> None:
    raw_secret = b"\x00\x01binary\xff"
    consumer = {"username": "c", "jwt_secrets": [{"key": "k", "secret": b64(raw_secret)}]}
    auth_env.start([jwt_plugin(secret_is_base64=True)], [consumer])
    assert auth_env.request("/", bearer(sign({"iss": "k"}, raw_secret))).status == 200
    r = auth_env.request("/", bearer(sign({"iss": "k"}, b64(raw_secret))))
    assert body(r) == {"message": "Invalid signature"}


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256"])
def test_rsa_algorithms(auth_env: AuthEnv, alg: str) -> None:
    private, pem = rsa_pair()
    consumer = {"username": "r", "jwt_secrets": [
        {"key": "rsa-iss", "algorithm": alg, "rsa_public_key": pem}]}
    auth_env.start([jwt_plugin()], [consumer])
    assert auth_env.request("/", bearer(sign({"iss": "rsa-iss"}, private, alg))).status == 200
    other, _ = rsa_pair()
    r = auth_env.request("/", bearer(sign({"iss": "rsa-iss"}, other, alg)))
    assert body(r) == {"message": "Invalid signature"}


@pytest.mark.parametrize(("alg", "curve"), [("ES256", ec.SECP256R1()),
                                            ("ES384", ec.SECP384R1())])
def test_ec_algorithms(auth_env: AuthEnv, alg: str, curve: ec.EllipticCurve) -> None:
    private, pem = ec_pair(curve)
    consumer = {"username": "e", "jwt_secrets": [
        {"key": "ec-iss", "algorithm": alg, "rsa_public_key": pem}]}
    auth_env.start([jwt_plugin()], [consumer])
    token = sign({"iss": "ec-iss"}, private, alg)
    assert auth_env.request("/", bearer(token)).status == 200
    # Kong asserts on a signature of the wrong size: 500
    head, claims, _ = token.split(".")
    r = auth_env.request("/", bearer(f"{head}.{claims}.{b64(b'short')}"))
    assert r.status == 500
    assert json.loads(r.body)["message"] == "An unexpected error occurred"


def test_algorithm_confusion_is_rejected(auth_env: AuthEnv) -> None:
    _, pem = rsa_pair()
    consumer = {"username": "r", "jwt_secrets": [
        {"key": "rsa-iss", "algorithm": "RS256", "rsa_public_key": pem}]}
    auth_env.start([jwt_plugin()], [consumer])
    # HS256 with the RSA public key as the HMAC secret
    forged = raw_token({"alg": "HS256", "typ": "JWT"}, {"iss": "rsa-iss"})
    head, claims, _ = forged.split(".")
    import hashlib
    import hmac
    mac = hmac.new(pem.encode(), f"{head}.{claims}".encode(), hashlib.sha256).digest()
    r = auth_env.request("/", bearer(f"{head}.{claims}.{b64(mac)}"))
    assert (r.status, body(r)) == (401, {"message": "Invalid algorithm"})


def test_realm(auth_env: AuthEnv) -> None:
    auth_env.start([jwt_plugin(realm="api")], [ALICE])
    assert auth_env.request("/").header("WWW-Authenticate") == 'Bearer realm="api"'
    r = auth_env.request("/", bearer("x"))
    assert r.header("WWW-Authenticate") == 'Bearer realm="api", error="invalid_token"'


def test_anonymous(auth_env: AuthEnv) -> None:
    gw = auth_env.start([jwt_plugin(anonymous="anon")], [ALICE, ANON])
    anon_id = next(c["id"] for c in gw.config.entities["consumers"] if c["username"] == "anon")
    for headers in ([], bearer("garbage"), bearer(sign({"iss": "alice-iss"}, "wrong"))):
        r = auth_env.request("/", [*headers, ("X-Credential-Identifier", "spoof")])
        assert r.status == 200
        assert auth_env.upstream_header("X-Consumer-ID") == anon_id
        assert auth_env.upstream_header("X-Anonymous-Consumer") == "true"
        assert auth_env.upstream_header("X-Credential-Identifier") is None
    assert auth_env.request("/", bearer(alice_token())).status == 200
    assert auth_env.upstream_header("X-Consumer-Username") == "alice"
    auth_env.start([jwt_plugin(anonymous="ghost")], [ALICE])
    r = auth_env.request("/")
    assert (r.status, body(r)["message"]) == (
        500, "anonymous consumer ghost is configured but doesn't exist")


def test_logical_or_with_key_auth(auth_env: AuthEnv) -> None:
    consumers = [dict(ALICE), {"username": "k", "keyauth_credentials": [{"key": "kk"}]}, ANON]
    auth_env.start([jwt_plugin(anonymous="anon"),
                    {"name": "key-auth", "config": {"anonymous": "anon"}}], consumers)
    # jwt (1450) runs first and falls back to anonymous; key-auth then authenticates
    assert auth_env.request("/", [("apikey", "kk")]).status == 200
    assert auth_env.upstream_header("X-Consumer-Username") == "k"
    assert auth_env.upstream_header("X-Anonymous-Consumer") is None
    # jwt succeeds: key-auth (anonymous set, credential present) does nothing
    assert auth_env.request("/", bearer(alice_token())).status == 200
    assert auth_env.upstream_header("X-Consumer-Username") == "alice"
    assert auth_env.upstream_header("X-Credential-Identifier") == "alice-iss"


def test_run_on_preflight(auth_env: AuthEnv) -> None:
    routes = [{"name": "r", "paths": ["/"], "methods": ["GET", "OPTIONS"]}]
    auth_env.start([jwt_plugin(run_on_preflight=False)], [ALICE], routes)
    assert auth_env.request("/", method="OPTIONS").status == 200
    auth_env.start([jwt_plugin()], [ALICE], routes)
    assert auth_env.request("/", method="OPTIONS").status == 401
