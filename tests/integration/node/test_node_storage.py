"""DB-less (`database=off`) and the embedded SQLite store (the default)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from node_support import Node, Upstream, simple_config

from tollway.config.declarative import validate


def test_dbless_creates_no_database_and_takes_post_config(
        node_factory: Callable[..., Node], up1: Upstream, up2: Upstream) -> None:
    node = node_factory(config=simple_config(up1.url), env={"TOLLWAY_DATABASE": "off"})
    assert node.get("/a").status_code == 200
    doc = simple_config(up2.url, "/b", "b")
    r = node.post_config(doc)
    assert r.status_code == 201, r.text
    for r in node.get_many("/b", 6):
        assert r.status_code == 200
        assert r.json()["upstream"] == "up2"
    assert node.status()["configuration_hash"] == validate(doc).hash
    assert not (node.prefix / "tollway.db").exists()
    assert not list(node.prefix.glob("*.db*")), list(node.prefix.iterdir())

    # nothing persisted: restarted without --config, a DB-less node serves an empty config
    assert node.stop() == 0
    again = node_factory(name="again", prefix=node.prefix, env={"TOLLWAY_DATABASE": "off"})
    assert again.get("/b").status_code == 404
    assert again.admin("GET", "/config").json()["config"].strip() in (
        "_format_version: '3.0'", '_format_version: "3.0"')
    assert not (node.prefix / "tollway.db").exists()


def test_dbless_status_has_kong_dbless_shape(node_factory: Callable[..., Node],
                                             up1: Upstream) -> None:
    # Kong §5.6: in DB-less mode `database` is omitted and `configuration_hash` is added
    node = node_factory(config=simple_config(up1.url), env={"TOLLWAY_DATABASE": "off"})
    status = node.status()
    assert "database" not in status, status
    assert len(status["configuration_hash"]) == 32


def test_embedded_store_persists_posted_config_across_restart(
        node_factory: Callable[..., Node], up1: Upstream, up2: Upstream) -> None:
    node = node_factory(config=simple_config(up1.url))
    db = node.prefix / "tollway.db"
    assert db.exists()
    doc = simple_config(up2.url, "/b", "b")
    assert node.post_config(doc).status_code == 201
    posted_hash = validate(doc).hash
    assert node.stop() == 0

    with sqlite3.connect(db) as conn:
        hashes = [h for (h,) in conn.execute(
            "SELECT hash FROM config_revisions ORDER BY revision")]
    assert hashes[-1] == posted_hash

    # restart on the same prefix WITHOUT --config: the posted config is served
    again = node_factory(name="again", prefix=node.prefix)
    assert again.config_path is None
    status = again.status()
    assert status["configuration_hash"] == posted_hash
    for r in again.get_many("/b", 6):
        assert r.status_code == 200
        assert r.json()["upstream"] == "up2"
    assert again.get("/a").status_code == 404
    text = again.admin("GET", "/config").json()["config"]
    assert "/b" in text and "/a\n" not in text


def test_embedded_store_empty_prefix_starts_with_empty_config(
        node_factory: Callable[..., Node]) -> None:
    node = node_factory()
    r = node.get("/anything")
    assert r.status_code == 404
    assert r.json()["message"] == "no Route matched with those values"
    assert (node.prefix / "tollway.db").exists()
    # Kong §5.6: the configuration_hash of an empty config is 32 zeros
    assert node.status()["configuration_hash"] == "0" * 32
