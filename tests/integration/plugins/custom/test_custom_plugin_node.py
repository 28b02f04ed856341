"""A custom plugin installed as a `tollway.plugins` entry point and enabled with the `plugins`
setting, on a real `tollway start` with two workers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from node_support import Node, Upstream, config_doc

NOT_ENABLED = ("plugin 'header-stamp' not enabled; add it to the 'plugins' configuration "
               "property")


@pytest.fixture(scope="module")
def stamp_node_upstream() -> Iterator[Upstream]:
    up = Upstream("stamp")
    yield up
    up.stop()


@pytest.fixture
def stamp_node(tmp_path: Path, installed_stamp: Path) -> Iterator[Callable[..., Node]]:
    """`stamp_node(plugins="bundled,header-stamp", config=None, start=True)`: a node with the
    example package on PYTHONPATH (installed, as pip would into site-packages)."""
    nodes: list[Node] = []

    def make(plugins: str = "bundled,header-stamp", config: Any = None,
             start: bool = True) -> Node:
        path = os.pathsep.join(p for p in (str(installed_stamp),
                                           os.environ.get("PYTHONPATH")) if p)
        node = Node(tmp_path / f"node-{len(nodes)}", config=config, workers=2,
                    env={"PYTHONPATH": path, "TOLLWAY_PLUGINS": plugins})
        nodes.append(node)
        if start:
            node.start()
        return node

    yield make
    for node in nodes:
        node.stop()


def stamped_doc(url: str, **config: Any) -> dict[str, Any]:
    return config_doc({"name": "svc", "url": url, "routes": [
        {"name": "r", "paths": ["/a"],
         "plugins": [{"name": "header-stamp", "config": config}]}]})


def test_custom_plugin_acts_on_both_workers(stamp_node: Callable[..., Node],
                                            stamp_node_upstream: Upstream) -> None:
    node = stamp_node(config=stamped_doc(stamp_node_upstream.url, include_worker=True,
                                         downstream_header="X-Stamped"))
    pids = set(node.worker_pids())
    assert len(pids) == 2
    seen: set[int] = set()
    for _ in range(200):  # one connection per request: the kernel spreads them
        r = node.get("/a")
        assert r.status_code == 200, r.text
        sent = r.json()["headers"]["x-stamp"]
        assert r.headers["x-stamped"] == sent
        prefix, _, pid = sent.partition("; worker=")
        assert prefix == "tollway"
        seen.add(int(pid))
        if seen == pids:
            break
    assert seen == pids
    # listed as available, with its version (Kong's GET / plugins.available_on_server)
    info = node.admin("GET", "/").json()
    assert info["plugins"]["available_on_server"]["header-stamp"] == {"version": "0.1.0"}


def test_config_changes_reach_the_custom_plugin(stamp_node: Callable[..., Node],
                                                stamp_node_upstream: Upstream) -> None:
    node = stamp_node()
    r = node.post_config(stamped_doc(stamp_node_upstream.url, value="posted"))
    assert r.status_code == 201, r.text
    for r in node.get_many("/a", 6):
        assert r.json()["headers"]["x-stamp"] == "posted"
    r = node.post_config(stamped_doc(stamp_node_upstream.url, on_exists="sometimes"),
                         flatten_errors="1")
    assert r.status_code == 400
    (entry,) = r.json()["flattened_errors"]
    assert entry["entity_name"] == "header-stamp"
    assert entry["errors"] == [{"type": "field", "field": "config.on_exists",
                                "message": "expected one of: override, append, keep"}]


def test_not_in_the_setting_the_config_is_rejected(stamp_node: Callable[..., Node],
                                                   stamp_node_upstream: Upstream) -> None:
    # installed, but `plugins` says only `bundled`
    node = stamp_node(plugins="bundled", config=stamped_doc(stamp_node_upstream.url),
                      start=False)
    assert node.run() == 1
    assert NOT_ENABLED in node.stderr()
    assert "tollway not started" in node.stderr()
    node = stamp_node(plugins="bundled")
    r = node.post_config(stamped_doc(stamp_node_upstream.url))
    assert r.status_code == 400
    assert NOT_ENABLED in r.text
    assert "header-stamp" not in node.admin("GET", "/").json()["plugins"]["available_on_server"]


@pytest.mark.parametrize("setting", ["bundled,header-stampp", "nope"])
def test_an_unknown_name_in_the_setting_stops_start(
        stamp_node: Callable[..., Node], setting: str) -> None:
    node = stamp_node(plugins=setting, start=False)
    assert node.run() == 1
    name = setting.split(",")[-1]
    assert (f"tollway not started: plugins: '{name}' is neither bundled nor installed as a "
            "'tollway.plugins' entry point") in node.stderr()
