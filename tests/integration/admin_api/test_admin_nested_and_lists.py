"""Nested and n-1 endpoints, credentials, pagination, tags, schemas (§5.2–5.6)."""

from __future__ import annotations

import datetime

from admin_api_support import Admin
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _cert() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def test_service_routes_and_route_service(admin: Admin) -> None:
    sid = admin.post("/services", json={"name": "n-svc", "host": "h"}).json()["id"]
    admin.post("/services", json={"name": "n-other", "host": "h"})
    rid = admin.post("/services/n-svc/routes", json={"name": "n-r", "paths": ["/n"]}).json()["id"]
    listed = admin.get(f"/services/{sid}/routes").json()
    assert [r["id"] for r in listed["data"]] == [rid] and listed["next"] is None
    assert admin.get("/services/n-svc/routes/n-r").status_code == 200
    assert admin.get("/services/n-other/routes/n-r").status_code == 404  # not its child
    assert admin.get("/services/ghost/routes").status_code == 404
    assert admin.get("/routes/n-r/service").json()["id"] == sid
    r = admin.patch("/routes/n-r/service", json={"retries": 1})
    assert r.status_code == 200 and r.json()["retries"] == 1
    r = admin.delete("/routes/n-r/service")
    assert (r.status_code, r.json()) == (405, {"message": "Method not allowed"})
    admin.post("/routes/n-r/plugins", json={"name": "cors"})
    assert len(admin.get("/routes/n-r/plugins").json()["data"]) == 1
    assert admin.get("/services/n-svc/plugins").json()["data"] == []


def test_consumer_credentials(admin: Admin) -> None:
    admin.post("/consumers", json={"username": "cred-c", "custom_id": "cid-1"})
    r = admin.post("/consumers/cred-c/key-auth", json={})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    assert len(key) == 32 and "updated_at" not in r.json() and "created_at" in r.json()
    assert admin.get(f"/key-auths/{key}").json()["key"] == key
    assert [k["key"] for k in admin.get("/consumers/cred-c/key-auth").json()["data"]] == [key]
    r = admin.post("/consumers/cred-c/jwt", json={"key": "iss-1"})
    assert r.status_code == 201 and r.json()["algorithm"] == "HS256" and r.json()["secret"]
    assert admin.get("/jwts/iss-1").status_code == 200
    assert admin.get("/consumers?custom_id=cid-1").json()["data"][0]["username"] == "cred-c"
    admin.post("/consumers/cred-c/plugins", json={"name": "correlation-id"})
    assert admin.delete("/consumers/cred-c").status_code == 204
    # credentials and the consumer's plugins go with it
    assert admin.get(f"/key-auths/{key}").status_code == 404
    assert admin.get("/jwts/iss-1").status_code == 404


def test_upstream_targets(admin: Admin) -> None:
    admin.post("/upstreams", json={"name": "t-up"})
    r = admin.post("/upstreams/t-up/targets", json={"target": "10.0.0.1:80", "weight": 5})
    assert r.status_code == 201, r.text
    assert admin.get("/upstreams/t-up/targets/10.0.0.1:80").json()["weight"] == 5
    assert admin.post("/upstreams/t-up/targets",
                      json={"target": "10.0.0.1:80"}).status_code == 409
    assert len(admin.get("/upstreams/t-up/targets/all").json()["data"]) == 1
    assert admin.delete("/upstreams/t-up").status_code == 204
    assert admin.get("/upstreams/t-up/targets").status_code == 404


def test_certificates_and_snis(admin: Admin) -> None:
    cert, key = _cert()
    cid = admin.post("/certificates", json={"cert": cert, "key": key}).json()["id"]
    r = admin.post(f"/certificates/{cid}/snis", json={"name": "admin.test"})
    assert r.status_code == 201, r.text
    assert admin.get("/snis/admin.test/certificate").json()["id"] == cid
    r = admin.delete(f"/certificates/{cid}")
    assert r.status_code == 400 and r.json()["fields"] == {"@referenced_by": "snis"}


def test_pagination(admin: Admin) -> None:
    for i in range(5):
        admin.post("/consumers", json={"username": f"page-{i}", "tags": ["paging"]})
    seen: list[str] = []
    url: str | None = "/consumers?size=2&tags=paging"
    pages = 0
    while url is not None:
        body = admin.get(url).json()
        seen += [c["username"] for c in body["data"]]
        pages += 1
        if body["next"] is not None:
            assert "offset" in body and "&tags=paging" in body["next"] and "&size=2" in body["next"]
        else:
            assert "offset" not in body
        url = body["next"]
    assert sorted(seen) == [f"page-{i}" for i in range(5)] and pages == 3
    for bad, text in (("x", "size must be a number"),
                      ("0", "size must be an integer between 1 and 1000"),
                      ("1001", "size must be an integer between 1 and 1000")):
        r = admin.get(f"/consumers?size={bad}")
        assert (r.status_code, r.json()["code"], r.json()["message"]) == (400, 9, text)
    r = admin.get("/consumers?offset=!!!")
    assert r.status_code == 400 and r.json()["code"] == 7
    assert r.json()["message"] == "'!!!' is not a valid offset: bad base64 encoding"
    r = admin.get("/consumers?offset=bm9wZQ")  # "nope"
    assert r.json()["message"] == "'bm9wZQ' is not a valid offset: bad json encoding"


def test_tag_filters(admin: Admin) -> None:
    admin.post("/services", json={"name": "tag-ab", "host": "h", "tags": ["ta", "tb"]})
    admin.post("/services", json={"name": "tag-a", "host": "h", "tags": ["ta"]})
    admin.post("/services", json={"name": "tag-c", "host": "h", "tags": ["tc"]})

    def names(q: str) -> set[str]:
        return {s["name"] for s in admin.get(f"/services?tags={q}").json()["data"]}

    assert names("ta,tb") == {"tag-ab"}
    assert names("ta/tc") == {"tag-ab", "tag-a", "tag-c"}
    r = admin.get("/services?tags=ta,tb/tc")
    assert (r.status_code, r.json()["code"]) == (400, 11)
    assert r.json()["message"] == "invalid option (tags: invalid filter syntax)"
    r = admin.get("/services?tags=a,b,c,d,e,f")
    assert r.json()["message"] == "invalid option (tags: cannot query more than 5 tags)"
    tc = admin.get("/tags/tc").json()["data"]
    assert [(t["entity_name"], t["tag"]) for t in tc] == [("services", "tc")]
    assert {"ta", "tb", "tc"} <= {t["tag"] for t in admin.get("/tags?size=1000").json()["data"]}


def test_schemas_and_enabled_plugins(admin: Admin) -> None:
    enabled = admin.get("/plugins/enabled").json()["enabled_plugins"]
    assert "cors" in enabled and "rate-limiting" in enabled
    fields = admin.get("/schemas/services").json()["fields"]
    host = next(f["host"] for f in fields if "host" in f)
    assert host["type"] == "string" and host["required"] is True
    r = admin.get("/schemas/nope")
    assert (r.status_code, r.json()) == (404, {"message": "No entity named 'nope'"})
    cfg = next(f["config"] for f in admin.get("/schemas/plugins/cors").json()["fields"]
               if "config" in f)
    assert any("origins" in f for f in cfg["fields"])
    assert admin.get("/schemas/plugins/nope").json() == {"message": "No plugin named 'nope'"}
    ok = admin.post("/schemas/routes/validate", json={"paths": ["/v"]})
    assert (ok.status_code, ok.json()) == (200, {"message": "schema validation successful"})
    bad = admin.post("/schemas/routes/validate", json={"paths": ["v"]})
    assert bad.status_code == 400 and bad.json()["code"] == 2
    ok = admin.post("/schemas/plugins/validate", json={"name": "cors"})
    assert ok.status_code == 200
    bad = admin.post("/schemas/plugins/validate", json={"name": "rate-limiting", "config": {}})
    assert bad.status_code == 400 and bad.json()["code"] == 2


def test_openapi_is_served(admin: Admin) -> None:
    doc = admin.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"get", "post"} <= set(doc["paths"]["/services"])
