"""DB-less writes (405 code 12, §5.7), admin tokens and the non-loopback bind refusal."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from admin_api_support import start_node
from node_support import Node

DOC = {"_format_version": "3.0",
       "services": [{"name": "off-svc", "host": "h", "routes": [{"name": "off-r",
                                                               "paths": ["/o"]}]}]}


def test_dbless_reads_work_and_writes_are_405(tmp_path: Path) -> None:
    node = start_node(tmp_path, "off", config=DOC)
    try:
        assert node.admin("GET", "/services/off-svc").status_code == 200
        assert node.admin("GET", "/services/off-svc/routes").json()["data"][0]["name"] == "off-r"
        for method, path, verb in (("POST", "/services", "create"),
                                   ("PUT", "/services/x", "upsert"),
                                   ("PATCH", "/services/off-svc", "update"),
                                   ("DELETE", "/services/off-svc", "delete"),
                                   ("POST", "/services/off-svc/routes", "create")):
            entity = "routes" if path.endswith("/routes") else "services"
            r = node.admin(method, path, json={"host": "h"})
            assert r.status_code == 405, (method, path, r.text)
            assert r.json() == {"code": 12, "name": "operation unsupported",
                                "message": f"cannot {verb} '{entity}' entities when not "
                                           "using a database"}
        # POST /config stays the way to change a DB-less node
        assert node.post_config(DOC).status_code == 201
    finally:
        node.stop()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    workdir = tmp_path_factory.mktemp("admin-tokens")
    tokens = workdir / "tokens"
    ro = hashlib.sha256(b"ro-secret").hexdigest()
    ci = hashlib.sha256(b"ci-secret").hexdigest()
    tokens.write_text(f"# name role hash\nviewer read-only sha256:{ro}\n"
                      f"ci-deploy admin sha256:{ci}\n")
    node = start_node(workdir, "sqlite", env={"TOLLWAY_ADMIN_TOKEN": "main-secret",
                                              "TOLLWAY_ADMIN_TOKENS_FILE": str(tokens)},
                      token="main-secret")
    yield node
    node.stop()


def _get(node: Node, path: str, **headers: str) -> httpx.Response:
    return httpx.get(node.admin_url + path, headers=headers, timeout=10)


def _post(node: Node, path: str, body: dict[str, object], **headers: str) -> httpx.Response:
    return httpx.post(node.admin_url + path, json=body, headers=headers, timeout=10)


def test_no_token_401(guarded: Node) -> None:
    r = _get(guarded, "/services")
    assert (r.status_code, r.json()) == (401, {"message": "Unauthorized"})
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert _post(guarded, "/services", {"host": "h"}).status_code == 401


def test_wrong_token_401(guarded: Node) -> None:
    assert _get(guarded, "/services", authorization="Bearer main-secretX").status_code == 401
    assert _get(guarded, "/services", **{"kong-admin-token": "nope"}).status_code == 401
    assert _get(guarded, "/services", authorization="Basic main-secret").status_code == 401


def test_read_only_token_403_on_writes(guarded: Node) -> None:
    auth = {"authorization": "Bearer ro-secret"}
    assert _get(guarded, "/services", **auth).status_code == 200
    r = _post(guarded, "/services", {"name": "ro", "host": "h"}, **auth)
    assert (r.status_code, r.json()) == (403, {"message": "Forbidden: admin token 'viewer' "
                                                          "is read-only"})
    assert _get(guarded, "/services/ro", **auth).status_code == 404  # nothing written
    # validating writes nothing: allowed
    assert _post(guarded, "/schemas/services/validate", {"host": "h"}, **auth).status_code == 200


def test_admin_tokens_write(guarded: Node) -> None:
    r = _post(guarded, "/services", {"name": "tok-1", "host": "h"},
              authorization="Bearer main-secret")
    assert r.status_code == 201, r.text
    r = _post(guarded, "/services", {"name": "tok-2", "host": "h"},
              **{"kong-admin-token": "ci-secret"})
    assert r.status_code == 201, r.text
    root = _get(guarded, "/", authorization="Bearer ci-secret").json()
    assert root["configuration"]["admin_token"] == "******"


def test_non_loopback_admin_listen_without_token_is_refused(tmp_path: Path) -> None:
    node = Node(tmp_path, env={"TOLLWAY_DATABASE": "off"}, workers=1)
    node.env["TOLLWAY_ADMIN_LISTEN"] = f"0.0.0.0:{node.admin_port}"
    assert node.run(timeout=20) == 1
    assert "is not a loopback address and no admin token is configured" in node.stderr()


def test_bad_tokens_file_stops_the_node(tmp_path: Path) -> None:
    bad = tmp_path / "tokens"
    bad.write_text("someone superuser sha256:00\n")
    node = Node(tmp_path, env={"TOLLWAY_DATABASE": "off",
                               "TOLLWAY_ADMIN_TOKENS_FILE": str(bad)}, workers=1)
    assert node.run(timeout=20) == 1
    assert "role must be one of: admin, read-only" in node.stderr()
