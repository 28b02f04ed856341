"""Kong's generated CRUD endpoints against a real node (§5.2 of the Kong reference)."""

from __future__ import annotations

import uuid

from admin_api_support import Admin

SVC = {"url": "http://127.0.0.1:9/base"}


def test_create_get_by_name_and_id(admin: Admin) -> None:
    r = admin.post("/services", json={"name": "crud-a", **SVC})
    assert r.status_code == 201, r.text
    body = r.json()
    uuid.UUID(body["id"], version=4)  # Admin API creates get a random uuid4, as in Kong
    assert body["host"] == "127.0.0.1" and body["path"] == "/base" and body["retries"] == 5
    assert body["tags"] is None and isinstance(body["created_at"], int)
    assert body["updated_at"] == body["created_at"]
    assert admin.get("/services/crud-a").json()["id"] == body["id"]
    assert admin.get(f"/services/{body['id']}").json()["name"] == "crud-a"
    missing = admin.get("/services/nope")
    assert (missing.status_code, missing.json()) == (404, {"message": "Not found"})


def test_every_write_is_one_revision_and_a_failed_one_none(admin: Admin) -> None:
    before = admin.revision()
    assert admin.post("/consumers", json={"username": "rev-1"}).status_code == 201
    assert admin.revision() == (before or 0) + 1
    assert admin.post("/consumers", json={"username": "rev-1"}).status_code == 409
    assert admin.post("/consumers", json={"bogus": 1}).status_code == 400
    assert admin.revision() == (before or 0) + 1


def test_put_upserts_by_name_and_replaces(admin: Admin) -> None:
    r = admin.put("/services/crud-put", json={**SVC, "retries": 2, "tags": ["x"]})
    assert r.status_code == 200, r.text
    ident = r.json()["id"]
    assert r.json()["name"] == "crud-put" and r.json()["retries"] == 2
    r = admin.put("/services/crud-put", json={"host": "example.com"})
    assert r.status_code == 200, r.text
    body = r.json()
    # replace: same id, omitted fields back to their defaults
    assert body["id"] == ident and body["retries"] == 5 and body["tags"] is None
    assert body["host"] == "example.com" and body["path"] is None
    new_id = str(uuid.uuid4())
    r = admin.put(f"/consumers/{new_id}", json={"username": "put-by-id"})
    assert r.status_code == 200 and r.json()["id"] == new_id


def test_patch_updates_some_fields(admin: Admin) -> None:
    ident = admin.post("/services", json={"name": "crud-patch", **SVC}).json()["id"]
    r = admin.patch("/services/crud-patch", json={"retries": 9})
    assert r.status_code == 200, r.text
    assert r.json()["retries"] == 9 and r.json()["path"] == "/base" and r.json()["id"] == ident
    r = admin.patch("/services/crud-patch", json={"url": "https://example.org"})
    assert (r.json()["protocol"], r.json()["port"], r.json()["path"]) == ("https", 443, None)
    assert admin.patch("/services/crud-none", json={"retries": 1}).status_code == 404
    r = admin.patch("/services/crud-patch", json={"retries": -1})
    assert r.status_code == 400 and r.json()["code"] == 2


def test_form_bodies_with_nested_keys(admin: Admin) -> None:
    admin.post("/services", json={"name": "crud-form", **SVC})
    r = admin.post("/services/crud-form/routes",
                   content="name=form-r&paths[]=/f1&paths[]=/f2&methods=GET&methods=POST"
                           "&strip_path=false&regex_priority=3",
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["paths"] == ["/f1", "/f2"] and body["methods"] == ["GET", "POST"]
    assert body["strip_path"] is False and body["regex_priority"] == 3
    r = admin.post("/plugins", content="name=cors&service.name=crud-form&config.max_age=5",
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 201, r.text
    assert r.json()["config"]["max_age"] == 5


def test_foreign_keys_by_id_or_name(admin: Admin) -> None:
    sid = admin.post("/services", json={"name": "crud-fk", **SVC}).json()["id"]
    r = admin.post("/routes", json={"name": "fk-by-name", "paths": ["/fkn"],
                                    "service": {"name": "crud-fk"}})
    assert r.status_code == 201 and r.json()["service"] == {"id": sid}
    r = admin.post("/routes", json={"paths": ["/fki"], "service": {"id": sid}})
    assert r.status_code == 201
    r = admin.post("/routes", json={"paths": ["/x"], "service": {"name": "ghost"}})
    assert r.status_code == 400 and r.json()["code"] == 13
    assert r.json()["name"] == "foreign keys unresolved"
    ghost = str(uuid.uuid4())
    r = admin.post("/routes", json={"paths": ["/x"], "service": {"id": ghost}})
    assert r.status_code == 400 and r.json()["code"] == 4
    assert r.json()["message"] == (f"the foreign key '{{id=\"{ghost}\"}}' does not reference "
                                   "an existing 'services' entity.")
    r = admin.post("/routes", json={"paths": ["/x"], "service": "crud-fk"})
    assert r.status_code == 400 and r.json()["fields"] == {"service": "expected a record"}


def test_referenced_by_and_cascades(admin: Admin) -> None:
    admin.post("/services", json={"name": "crud-del", **SVC})
    admin.post("/services/crud-del/routes", json={"name": "del-r", "paths": ["/del"]})
    pid = admin.post("/services/crud-del/plugins", json={"name": "cors"}).json()["id"]
    r = admin.delete("/services/crud-del")
    assert r.status_code == 400
    assert r.json() == {"code": 4, "name": "foreign key violation",
                        "message": "an existing 'routes' entity references this "
                                   "'services' entity",
                        "fields": {"@referenced_by": "routes"}}
    assert admin.delete("/routes/del-r").status_code == 204
    assert admin.delete("/services/crud-del").status_code == 204
    assert admin.get(f"/plugins/{pid}").status_code == 404  # cascaded with its service
    assert admin.delete("/services/crud-del").status_code == 204  # absent: still 204


def test_conflicts_are_409(admin: Admin) -> None:
    ident = admin.post("/consumers", json={"username": "dup"}).json()["id"]
    r = admin.post("/consumers", json={"username": "dup"})
    assert r.status_code == 409 and r.json()["code"] == 5
    assert r.json()["message"] == "UNIQUE violation detected on '{username=\"dup\"}'"
    r = admin.post("/consumers", json={"id": ident, "username": "other"})
    assert r.status_code == 409 and r.json()["code"] == 3


def test_schema_violation_body(admin: Admin) -> None:
    r = admin.post("/services", json={"protocol": "ftp"})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == 2 and body["name"] == "schema violation"
    assert body["fields"]["host"] == "required field missing"
    assert body["fields"]["protocol"].startswith("expected one of:")
    assert body["message"].startswith("2 schema violations (host: required field missing; "
                                      "protocol: expected one of:")
    r = admin.post("/services", json={"host": "h", "bogus": 1})
    assert r.json()["message"] == "schema violation (bogus: unknown field)"


def test_bad_bodies(admin: Admin) -> None:
    r = admin.post("/services", content=b"{nope", headers={"content-type": "application/json"})
    assert (r.status_code, r.json()) == (400, {"message": "Cannot parse JSON body"})
    r = admin.post("/services", content=b"x", headers={"content-type": "text/csv"})
    assert r.status_code == 415 and r.content == b""


def test_unknown_path_and_method(admin: Admin) -> None:
    assert admin.get("/nowhere/at/all/x").json() == {"message": "Not found"}
    r = admin.request("POST", "/status")
    assert (r.status_code, r.json()) == (405, {"message": "Method not allowed"})


def test_write_is_served_by_the_proxy(admin: Admin) -> None:
    admin.post("/services", json={"name": "crud-live", "url": "http://127.0.0.1:9"})
    admin.post("/services/crud-live/routes", json={"paths": ["/live-check"]})
    # no upstream on port 9: a 502 from the proxy proves the route is live on the workers
    r = admin.node.get("/live-check")
    assert r.status_code == 502, r.text
    assert admin.node.get("/not-routed-here").status_code == 404


def test_config_in_db_mode_reflects_writes(admin: Admin) -> None:
    admin.post("/upstreams", json={"name": "cfg-up"})
    text = admin.get("/config").json()["config"]
    assert "cfg-up" in text
