"""key-auth through a real gateway socket: where keys are found, the 401s of §3.3 with
their WWW-Authenticate, hide_credentials, anonymous, run_on_preflight, consumer headers."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from auth_plugins_support import AuthEnv

ALICE = {"username": "alice", "custom_id": "a-1",
         "keyauth_credentials": [{"key": "alice-key"}]}
BOB = {"username": "bob", "keyauth_credentials": [{"key": "bob-key"}]}
ANON = {"username": "anon"}


def key_auth(**config: Any) -> dict[str, Any]:
    return {"name": "key-auth", "config": config}


def error_message(body: bytes) -> str:
    doc = json.loads(body)
    assert re.fullmatch(r"[0-9a-f]{32}", doc["request_id"])
    msg: str = doc["message"]
    return msg


def test_no_key_is_401_with_key_challenge(auth_env: AuthEnv) -> None:
    auth_env.start([key_auth()], [ALICE])
    r = auth_env.request("/")
    assert r.status == 401
    assert error_message(r.body) == "No API key found in request"
    assert r.header("WWW-Authenticate") == "Key"
    assert auth_env.upstream.requests == []


def test_unknown_key_is_401_unauthorized(auth_env: AuthEnv) -> None:
    auth_env.start([key_auth(realm="api")], [ALICE])
    r = auth_env.request("/", [("apikey", "nope")])
    assert r.status == 401
    assert error_message(r.body) == "Unauthorized"
    assert r.header("WWW-Authenticate") == 'Key realm="api"'


def test_empty_key_counts_as_missing(auth_env: AuthEnv) -> None:
    auth_env.start([key_auth()], [ALICE])
    r = auth_env.request("/?apikey=")
    assert (r.status, error_message(r.body)) == (401, "No API key found in request")


@pytest.mark.parametrize(("target", "headers"), [
    ("/", [("apikey", "a"), ("apikey", "b")]),
    ("/?apikey=a&apikey=b", []),
])
def test_duplicate_key_is_401(auth_env: AuthEnv, target: str,
                              headers: list[tuple[str, str]]) -> None:
    auth_env.start([key_auth()], [ALICE])
    r = auth_env.request(target, headers)
    assert (r.status, error_message(r.body)) == (401, "Duplicate API key found")


def test_key_in_header_sets_consumer_headers_and_drops_spoofed_ones(auth_env: AuthEnv) -> None:
    gw = auth_env.start([key_auth()], [ALICE])
    r = auth_env.request("/", [("ApiKey", "alice-key"), ("X-Anonymous-Consumer", "true"),
                               ("X-Consumer-Username", "root")])
    assert r.status == 200
    consumer = next(c for c in gw.config.entities["consumers"] if c["username"] == "alice")
    cred = gw.config.entities["keyauth_credentials"][0]
    assert auth_env.upstream_header("X-Consumer-ID") == consumer["id"]
    assert auth_env.upstream_header("X-Consumer-Custom-ID") == "a-1"
    assert auth_env.upstream_header("X-Consumer-Username") == "alice"
    assert auth_env.upstream_header("X-Credential-Identifier") == cred["id"]
    assert auth_env.upstream_header("X-Anonymous-Consumer") is None
    # not hidden by default
    assert auth_env.upstream_header("apikey") == "alice-key"


def test_key_in_query(auth_env: AuthEnv) -> None:
    auth_env.start([key_auth()], [ALICE, BOB])
    r = auth_env.request("/p?x=1&apikey=bob-key")
    assert r.status == 200
    assert auth_env.upstream_header("X-Consumer-Username") == "bob"
    assert auth_env.upstream.requests[-1].target == "/p?x=1&apikey=bob-key"


def test_header_wins_over_query_and_names_are_tried_in_order(auth_env: AuthEnv) -> None:
    auth_env.start([key_auth(key_names=["first", "second"])], [ALICE, BOB])
    r = auth_env.request("/?first=bob-key", [("second", "alice-key")])
    assert r.status == 200
    assert auth_env.upstream_header("X-Consumer-Username") == "bob"
    r = auth_env.request("/?second=bob-key", [("first", "alice-key")])
    assert auth_env.upstream_header("X-Consumer-Username") == "alice"


def test_underscore_key_name_matches_hyphen_header(auth_env: AuthEnv) -> None:
    auth_env.start([key_auth(key_names=["api_key"])], [ALICE])
    r = auth_env.request("/", [("Api-Key", "alice-key")])
    assert r.status == 200


def test_key_in_header_false_and_key_in_query_false(auth_env: AuthEnv) -> None:
    auth_env.start([key_auth(key_in_header=False)], [ALICE])
    assert auth_env.request("/", [("apikey", "alice-key")]).status == 401
    assert auth_env.request("/?apikey=alice-key").status == 200
    auth_env.start([key_auth(key_in_query=False)], [ALICE])
    assert auth_env.request("/?apikey=alice-key").status == 401
    assert auth_env.request("/", [("apikey", "alice-key")]).status == 200


def test_hide_credentials_removes_header_and_query_arg(auth_env: AuthEnv) -> None:
    auth_env.start([key_auth(hide_credentials=True)], [ALICE])
    r = auth_env.request("/p?a=1&apikey=alice-key&b=%20x")
    assert r.status == 200
    assert auth_env.upstream.requests[-1].target == "/p?a=1&b=%20x"
    r = auth_env.request("/p", [("apikey", "alice-key")])
    assert r.status == 200
    assert auth_env.upstream_header("apikey") is None


def test_anonymous_used_when_key_missing_or_wrong(auth_env: AuthEnv) -> None:
    gw = auth_env.start([key_auth(anonymous="anon")], [ALICE, ANON])
    anon_id = next(c["id"] for c in gw.config.entities["consumers"] if c["username"] == "anon")
    for headers in ([], [("apikey", "wrong")]):
        r = auth_env.request("/", [*headers, ("X-Credential-Identifier", "spoof")])
        assert r.status == 200
        assert auth_env.upstream_header("X-Consumer-ID") == anon_id
        assert auth_env.upstream_header("X-Consumer-Username") == "anon"
        assert auth_env.upstream_header("X-Anonymous-Consumer") == "true"
        assert auth_env.upstream_header("X-Credential-Identifier") is None


def test_anonymous_by_id(auth_env: AuthEnv) -> None:
    gw = auth_env.start([key_auth()], [ALICE, ANON])
    anon_id = next(c["id"] for c in gw.config.entities["consumers"] if c["username"] == "anon")
    auth_env.start([key_auth(anonymous=anon_id)], [ALICE, ANON])
    assert auth_env.request("/").status == 200
    assert auth_env.upstream_header("X-Consumer-ID") == anon_id


def test_missing_anonymous_consumer_is_500(auth_env: AuthEnv) -> None:
    auth_env.start([key_auth(anonymous="ghost")], [ALICE])
    r = auth_env.request("/")
    assert r.status == 500
    assert error_message(r.body) == "anonymous consumer ghost is configured but doesn't exist"
    # a good key never looks at the anonymous consumer
    assert auth_env.request("/", [("apikey", "alice-key")]).status == 200


def test_run_on_preflight_false_skips_options(auth_env: AuthEnv) -> None:
    routes = [{"name": "r", "paths": ["/"], "methods": ["GET", "OPTIONS"]}]
    auth_env.start([key_auth(run_on_preflight=False)], [ALICE], routes)
    assert auth_env.request("/", method="OPTIONS").status == 200
    assert auth_env.request("/").status == 401
    auth_env.start([key_auth()], [ALICE], routes)
    assert auth_env.request("/", method="OPTIONS").status == 401


def test_config_swap_adds_and_revokes_keys(auth_env: AuthEnv) -> None:
    auth_env.start([key_auth()], [ALICE])
    assert auth_env.request("/", [("apikey", "bob-key")]).status == 401
    auth_env.swap([key_auth()], [BOB])
    assert auth_env.request("/", [("apikey", "bob-key")]).status == 200
    assert auth_env.request("/", [("apikey", "alice-key")]).status == 401
