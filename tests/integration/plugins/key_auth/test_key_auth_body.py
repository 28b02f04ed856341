"""key-auth `key_in_body` (§3.3): the key in form-urlencoded, JSON and multipart bodies, and
`hide_credentials` removing it from the body the upstream gets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from auth_plugins_support import AuthEnv
from dataplane_helpers import RawClient, Response

ALICE = {"username": "alice", "keyauth_credentials": [{"key": "alice-key"}]}
BOUNDARY = "XyZ"


def multipart(*fields: tuple[str, str]) -> bytes:
    out = b""
    for name, value in fields:
        out += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n").encode()
    return out + f"--{BOUNDARY}--\r\n".encode()


BODIES: dict[str, tuple[str, bytes]] = {
    "form": ("application/x-www-form-urlencoded", b"a=1&apikey=alice-key&b=2"),
    "json": ("application/json", b'{"a":1,"apikey":"alice-key"}'),
    "multipart": (f"multipart/form-data; boundary={BOUNDARY}",
                  multipart(("a", "1"), ("apikey", "alice-key"), ("b", "2"))),
}


def post(env: AuthEnv, ctype: str, body: bytes, chunked: bool = False) -> Response:
    assert env.gw is not None
    c = RawClient(env.gw.port)
    env.clients.append(c)
    headers = [("Content-Type", ctype)]
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return c.request("POST", "/", headers, body)


def key_auth(**config: Any) -> dict[str, Any]:
    return {"name": "key-auth", "config": {"key_in_body": True, **config}}


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_key_in_body_authenticates(auth_env: AuthEnv, kind: str) -> None:
    auth_env.start([key_auth()], [ALICE])
    ctype, body = BODIES[kind]
    r = post(auth_env, ctype, body, chunked=kind == "json")
    assert r.status == 200, r.body
    up = auth_env.upstream.requests[-1]
    assert up.header("x-consumer-username") == "alice"
    assert up.body == body  # untouched without hide_credentials


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_hide_credentials_removes_the_key_from_the_body(auth_env: AuthEnv, kind: str) -> None:
    auth_env.start([key_auth(hide_credentials=True)], [ALICE])
    ctype, body = BODIES[kind]
    r = post(auth_env, ctype, body)
    assert r.status == 200, r.body
    up = auth_env.upstream.requests[-1]
    assert up.header("x-consumer-username") == "alice"
    expected = {"form": b"a=1&b=2", "json": b'{"a":1}',
                "multipart": multipart(("a", "1"), ("b", "2"))}[kind]
    assert up.body == expected
    assert up.header("content-length") == str(len(expected))


def test_key_in_body_off_ignores_the_body(auth_env: AuthEnv) -> None:
    auth_env.start([{"name": "key-auth"}], [ALICE])
    r = post(auth_env, *BODIES["form"])
    assert r.status == 401
    assert json.loads(r.body)["message"] == "No API key found in request"


def test_header_wins_over_body_and_hide_still_cleans_the_body(auth_env: AuthEnv) -> None:
    auth_env.start([key_auth(hide_credentials=True)], [ALICE])
    assert auth_env.gw is not None
    c = RawClient(auth_env.gw.port)
    auth_env.clients.append(c)
    r = c.request("POST", "/", [("apikey", "alice-key"),
                                ("Content-Type", "application/x-www-form-urlencoded")],
                  b"z=1&apikey=other")
    assert r.status == 200
    up = auth_env.upstream.requests[-1]
    assert up.header("apikey") is None and up.body == b"z=1"


@pytest.mark.parametrize(("ctype", "body"), [
    ("application/json", b'{"apikey":["a","b"]}'),
    ("application/x-www-form-urlencoded", b"apikey=a&apikey=b"),
    (f"multipart/form-data; boundary={BOUNDARY}", multipart(("apikey", "a"), ("apikey", "b"))),
])
def test_duplicate_key_in_body(auth_env: AuthEnv, ctype: str, body: bytes) -> None:
    auth_env.start([key_auth()], [ALICE])
    r = post(auth_env, ctype, body)
    assert (r.status, json.loads(r.body)["message"]) == (401, "Duplicate API key found")


@pytest.mark.parametrize(("ctype", "body"), [
    ("application/json", b"{not json"),
    ("text/plain", b"apikey=alice-key"),
    ("application/json", b'{"apikey":5}'),
])
def test_unreadable_or_other_bodies_have_no_key(auth_env: AuthEnv, ctype: str,
                                                body: bytes) -> None:
    auth_env.start([key_auth()], [ALICE])
    r = post(auth_env, ctype, body)
    assert (r.status, json.loads(r.body)["message"]) == (401, "No API key found in request")
