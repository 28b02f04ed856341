"""Vault references in a running node (the workers use the secret; the store, GET /config and
revisions keep the reference) and secret masking in the revision diff; If-Match on writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from node_support import Node, Upstream

SECRET = "s3cr3t-api-key-value"


def _doc(url: str, key: str) -> dict[str, object]:
    return {"_format_version": "3.0", "services": [{
        "name": "s", "url": url, "routes": [{"name": "r", "paths": ["/"]}],
        "plugins": [{"name": "key-auth"}],
    }], "consumers": [{"username": "alice", "keyauth_credentials": [{"key": key}]}]}


def test_vault_reference_resolved_for_the_proxy_only(
        tmp_path: Path, cluster_nodes: Callable[..., Node],
        cluster_upstream: Upstream) -> None:
    node = cluster_nodes("vault", {"TOLLWAY_DATABASE": "sqlite", "GATEWAY_SECRET": SECRET},
                         workers=1)
    ref = "{vault://env/gateway-secret}"
    assert node.post_config(_doc(cluster_upstream.url, ref)).status_code == 201
    assert node.get("/", headers={"apikey": SECRET}).status_code == 200
    assert node.get("/", headers={"apikey": ref}).status_code == 401
    r = node.admin("GET", "/config")
    assert ref in r.json()["config"] and SECRET not in r.text
    assert r.headers["etag"] == f'"{r.json()["configuration_hash"]}"'
    rev = node.admin("GET", f"/config/revisions/{r.json()['revision']}")
    assert ref in rev.text and SECRET not in rev.text
    # the on-disk cache keeps the reference too
    assert SECRET not in (node.prefix / "config_cache.json").read_text()
    # an unresolvable reference is refused, naming the field; nothing changes
    bad = node.post_config(_doc(cluster_upstream.url, "{vault://env/not-set-anywhere}"))
    assert bad.status_code == 400 and "NOT_SET_ANYWHERE" in bad.text
    assert node.get("/", headers={"apikey": SECRET}).status_code == 200


def test_if_match_on_writes(cluster_nodes: Callable[..., Node],
                            cluster_upstream: Upstream) -> None:
    node = cluster_nodes("ifmatch", {"TOLLWAY_DATABASE": "sqlite"}, workers=1)
    etag = node.admin("GET", "/config").headers["etag"]
    r = node.admin("POST", "/services", json={"name": "a", "url": cluster_upstream.url},
                   headers={"If-Match": etag})
    assert r.status_code == 201
    # the same (now stale) tag again: 412, the current hash in ETag, nothing written
    r = node.admin("POST", "/services", json={"name": "b", "url": cluster_upstream.url},
                   headers={"If-Match": etag})
    assert r.status_code == 412 and "configuration has changed" in r.json()["message"]
    current = node.admin("GET", "/config").headers["etag"]
    assert r.headers["etag"] == current
    r = node.admin("POST", "/config", json={"_format_version": "3.0"},
                   headers={"If-Match": etag})
    assert r.status_code == 412
    assert [s["name"] for s in node.admin("GET", "/services").json()["data"]] == ["a"]
    r = node.admin("PATCH", "/services/a", json={"retries": 2}, headers={"If-Match": current})
    assert r.status_code == 200


def test_revision_diff_and_listing_mask_secrets(cluster_nodes: Callable[..., Node],
                                                cluster_upstream: Upstream) -> None:
    node = cluster_nodes("mask", {"TOLLWAY_DATABASE": "sqlite", "REDIS_PW": "from-env"},
                         workers=1)
    node.admin("POST", "/consumers", json={"username": "alice"})
    node.admin("POST", "/consumers/alice/key-auth", json={"key": "alice-key-123456"})
    plugin = {"name": "rate-limiting", "config": {
        "minute": 5, "policy": "redis", "redis_host": "127.0.0.1",
        "redis_password": "hunter2-redis"}}
    assert node.admin("POST", "/plugins", json=plugin).status_code == 201
    pid = node.admin("GET", "/plugins").json()["data"][0]["id"]
    r = node.admin("PATCH", f"/plugins/{pid}",
                   json={"config": {"redis": {"password": "{vault://env/redis-pw}"}}})
    assert r.status_code == 200, r.text
    r = node.admin("PATCH", "/consumers/alice/key-auth/alice-key-123456",
                   json={"key": "alice-key-rotated"})
    assert r.status_code == 200, r.text
    listing = node.admin("GET", "/config/revisions").json()["data"]
    newest, first = listing[0]["revision"], listing[-1]["revision"]
    text = json.dumps(listing)
    diff = node.admin("GET", f"/config/revisions/{first}/diff/{newest}")
    assert diff.status_code == 200
    for secret in ("alice-key-123456", "alice-key-rotated", "hunter2-redis",
                   "{vault://env/redis-pw}"):
        assert secret not in diff.text, secret
        assert secret not in text, secret
    # a rotated secret still shows as a changed field, masked on both sides (the plugin
    # patch; a key-auth key is the credential's identity for decK: delete + create)
    step = node.admin("GET", f"/config/revisions/{newest - 2}/diff/{newest - 1}").json()
    fields = [f for item in step["changes"]["updating"] for f in item["fields"]]
    assert {"field": "config.redis.password", "old": "[masked]",
            "new": "[masked]"} in fields
    assert all(f["old"] == f["new"] == "[masked]" for f in fields), fields
