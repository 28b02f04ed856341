"""The revision endpoints of a running node, on SQLite and PostgreSQL: history, one
revision, field-level diff, rollback with If-Match; DB-less nodes have none."""

from __future__ import annotations

from collections.abc import Callable

from node_support import Node, Upstream, config_doc, service, simple_config
from store_support import load_settings

from tollway.config.declarative import validate
from tollway.controlplane.store import Store, migrate


def started(store_nodes: Callable[..., Node], env: dict[str, str], **kwargs: object) -> Node:
    if env["TOLLWAY_DATABASE"] == "postgres":
        store = Store.open(load_settings(env))
        try:
            migrate.upgrade(store.engine)  # as `tollway migrations bootstrap` would
        finally:
            store.close()
    return store_nodes(env=env, workers=1, **kwargs)


def test_history_diff_and_rollback(store_nodes: Callable[..., Node],
                                   store_upstream: Upstream,
                                   backend_env_vars: dict[str, str]) -> None:
    url = store_upstream.url
    first = simple_config(url)
    node = started(store_nodes, backend_env_vars, config=first)
    second = config_doc(service("svc-a", url, {"route-a": ["/a"], "route-b": ["/b"]}))
    second["services"][0]["read_timeout"] = 1234
    r = node.admin("POST", "/config", json=second, params={"message": "add /b"},
                   headers={"X-Tollway-Author": "alice"})
    assert r.status_code == 201, r.text
    assert node.get("/b").status_code == 200

    r = node.admin("GET", "/config/revisions")
    assert r.status_code == 200
    body = r.json()
    assert [(d["revision"], d["author"], d["message"]) for d in body["data"]] == [
        (2, "alice", "add /b"), (1, "tollway start", f"loaded from {node.config_path}")]
    assert body["next"] is None and "offset" not in body
    assert [d["hash"] for d in body["data"]] == [validate(second).hash, validate(first).hash]

    page = node.admin("GET", "/config/revisions", params={"size": "1"}).json()
    assert [d["revision"] for d in page["data"]] == [2]
    assert page["next"] == f"/config/revisions?offset={page['offset']}&size=1"
    rest = node.admin("GET", page["next"]).json()
    assert [d["revision"] for d in rest["data"]] == [1] and rest["next"] is None
    bad = node.admin("GET", "/config/revisions", params={"size": "0"})
    assert bad.status_code == 400 and bad.json()["code"] == 9
    bad = node.admin("GET", "/config/revisions", params={"offset": "!!"})
    assert bad.status_code == 400 and bad.json()["code"] == 7

    r = node.admin("GET", "/config/revisions/1")
    assert r.status_code == 200
    assert r.headers["etag"] == f'"{validate(first).hash}"'
    doc = r.json()["config"]
    assert doc["_format_version"] == "3.0"
    assert validate(doc).hash == validate(first).hash  # the document validates back
    assert node.admin("GET", "/config/revisions/99").status_code == 404
    huge = str(2**80)  # past any integer column: still a plain 404, never a 500
    assert node.admin("GET", f"/config/revisions/{huge}").status_code == 404
    assert node.admin("GET", f"/config/revisions/1/diff/{huge}").status_code == 404

    r = node.admin("GET", "/config/revisions/1/diff/2")
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["from"]["revision"], d["to"]["revision"]) == (1, 2)
    assert d["summary"] == {"creating": 1, "updating": 1, "deleting": 0, "total": 2}
    assert [(c["kind"], c["name"]) for c in d["changes"]["creating"]] == [("route", "route-b")]
    update = d["changes"]["updating"][0]
    assert (update["kind"], update["name"]) == ("service", "svc-a")
    assert update["fields"] == [{"field": "read_timeout", "old": 60000, "new": 1234}]

    # rollback: a stale If-Match is refused and changes nothing
    stale = f'"{validate(first).hash}"'
    r = node.admin("POST", "/config/rollback", json={"revision": 1}, headers={"If-Match": stale})
    assert r.status_code == 412, r.text
    assert r.headers["etag"] == f'"{validate(second).hash}"'
    assert "has changed" in r.json()["message"]
    assert node.get("/b").status_code == 200
    assert len(node.admin("GET", "/config/revisions").json()["data"]) == 2

    current = r.headers["etag"]
    r = node.admin("POST", "/config/rollback", json={"revision": 1, "message": "undo"},
                   headers={"If-Match": current, "X-Tollway-Author": "bob"})
    assert r.status_code == 201, r.text
    assert r.json()["revision"] == 3 and r.json()["rolled_back_to"] == 1
    assert (r.json()["author"], r.json()["message"]) == ("bob", "undo")
    assert r.headers["etag"] == f'"{validate(first).hash}"'
    assert node.get("/b").status_code == 404  # served at once (DECISIONS.md #5)
    assert node.status()["configuration_hash"] == validate(first).hash
    assert node.status()["configuration_revision"] == 3

    # rolling back to what already runs stores nothing
    r = node.admin("POST", "/config/rollback", json={"revision": 1})
    assert r.status_code == 200 and r.json()["revision"] == 3
    for body_, field in (({}, "revision"), ({"revision": "x"}, "revision"),
                         ({"revision": 1, "bogus": 1}, "bogus")):
        r = node.admin("POST", "/config/rollback", json=body_)
        assert r.status_code == 400 and field in r.json()["fields"], r.text
    assert node.admin("POST", "/config/rollback", json={"revision": 42}).status_code == 404
    assert node.admin("POST", "/config/rollback", json={"revision": 2**70}).status_code == 404

    # the history survives a restart, and the node serves its latest revision
    assert node.stop() == 0
    # (backend_env_vars carries the prefix: the same SQLite file for the second node)
    again = started(store_nodes, backend_env_vars, name="again")
    assert again.status()["configuration_revision"] == 3
    assert again.get("/a").status_code == 200 and again.get("/b").status_code == 404


def test_dbless_node_has_no_revisions(store_nodes: Callable[..., Node],
                                      store_upstream: Upstream) -> None:
    node = store_nodes(config=simple_config(store_upstream.url), workers=1,
                       env={"TOLLWAY_DATABASE": "off"})
    for method, path, kwargs in (("GET", "/config/revisions", {}),
                                 ("GET", "/config/revisions/1", {}),
                                 ("POST", "/config/rollback", {"json": {"revision": 1}})):
        r = node.admin(method, path, **kwargs)
        assert r.status_code == 400, (path, r.text)
        assert "database=off" in r.json()["message"]
