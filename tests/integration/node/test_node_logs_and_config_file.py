"""An invalid `--config` file stops `tollway start`; the access log is JSON lines."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node_support import Node, Upstream, simple_config, wait_until

INVALID_YAML = """\
_format_version: "3.0"
services:
- name: good
  url: http://127.0.0.1:1
  routes:
  - name: ok
    paths: ["/ok"]
- name: bad
  host: 127.0.0.1
  port: 99999
  routes:
  - name: bad-route
    paths:
    - /fine
    - no-slash
"""


def test_invalid_config_file_exits_1_listing_every_error_with_line(
        node_factory: Callable[..., Node], tmp_path: Path) -> None:
    path = tmp_path / "kong.yaml"
    path.write_text(INVALID_YAML)
    node = node_factory(start=False, config=path)
    rc = node.run()
    err = node.stderr()
    assert rc == 1, err
    # every error, with its path in the document and its line in the file
    port_line = next(line for line in err.splitlines() if "services[1].port" in line)
    assert re.search(r"\b10\b", port_line), port_line
    assert "between 0 and 65535" in port_line
    path_line = next(line for line in err.splitlines()
                     if "services[1].routes[0].paths[1]" in line)
    assert re.search(r"\b15\b", path_line), path_line
    assert "should start with: /" in path_line
    assert "Traceback" not in err
    # the node never served: nothing answers on its ports, no revision was stored
    assert not (node.prefix / "tollway.db").exists() or b"no-slash" not in (
        node.prefix / "tollway.db").read_bytes()


def test_unparsable_config_file_exits_1(node_factory: Callable[..., Node],
                                        tmp_path: Path) -> None:
    path = tmp_path / "kong.yaml"
    path.write_text('_format_version: "3.0"\nservices: [\n')
    node = node_factory(start=False, config=path)
    assert node.run() == 1
    assert "kong.yaml" in node.stderr()
    assert "Traceback" not in node.stderr()


def test_missing_config_file_exits_1(node_factory: Callable[..., Node],
                                     tmp_path: Path) -> None:
    node = node_factory(start=False, config=tmp_path / "absent.yaml")
    assert node.run() == 1
    assert "absent.yaml" in node.stderr()
    assert "Traceback" not in node.stderr()


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    text = path.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def test_access_log_file_has_json_lines(node_factory: Callable[..., Node], up1: Upstream,
                                        tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    node = node_factory(config=simple_config(up1.url), access_log=str(log))
    assert node.get("/a/x?q=1&r=2").status_code == 200
    assert node.get("/nowhere").status_code == 404
    assert node.get("/a/posted", method="POST", content=b"hello").status_code == 200

    entries = wait_until(lambda: (e := read_json_lines(log)) and len(e) >= 3 and e, 5,
                         what="3 access log lines")
    assert len(entries) == 3
    by_uri = {e["request"]["uri"]: e for e in entries}
    ok = by_uri["/a/x?q=1&r=2"]
    assert ok["request"]["method"] == "GET"
    assert ok["response"]["status"] == 200
    assert ok["route"]["name"] == "route-a"
    assert ok["service"]["name"] == "svc-a"
    assert isinstance(ok["latencies"]["request"], int)
    assert isinstance(ok["latencies"]["proxy"], int)
    assert ok["latencies"]["request"] >= 0
    assert ok["client_ip"] == "127.0.0.1"
    assert re.fullmatch(r"[0-9a-f]{32}", ok["request_id"])

    miss = by_uri["/nowhere"]
    assert miss["response"]["status"] == 404
    assert miss["route"] is None
    assert miss["service"] is None

    posted = by_uri["/a/posted"]
    assert posted["request"]["method"] == "POST"
    assert posted["response"]["status"] == 200
    assert posted["route"]["name"] == "route-a"
    # nothing else went to stdout
    assert node.stdout().strip() == ""


def test_access_log_defaults_to_stdout_error_log_to_stderr(
        node_factory: Callable[..., Node], up1: Upstream) -> None:
    node = node_factory(config=simple_config(up1.url), access_log=None)
    for _ in range(3):
        assert node.get("/a/std").status_code == 200

    def three_lines() -> list[dict[str, Any]] | None:
        lines = [json.loads(line) for line in node.stdout().splitlines() if line.strip()]
        return lines if len(lines) >= 3 else None

    entries = wait_until(three_lines, 5, what="3 access log lines on stdout")
    # stdout holds access-log JSON lines only (json.loads above would fail otherwise)
    assert len(entries) == 3
    assert all(e["request"]["uri"] == "/a/std" and e["response"]["status"] == 200
               for e in entries)
    assert all(e["route"]["name"] == "route-a" for e in entries)
    # the error log (start-up line included) is on stderr, not mixed into stdout
    assert "tollway started" in node.stderr()
    assert "tollway started" not in node.stdout()
    assert node.stop() == 0
    assert "tollway stopped" in node.stderr()
    assert all(json.loads(line) for line in node.stdout().splitlines() if line.strip())


def test_access_log_off_writes_nothing(node_factory: Callable[..., Node],
                                       up1: Upstream) -> None:
    node = node_factory(config=simple_config(up1.url), access_log="off")
    assert node.get("/a").status_code == 200
    assert node.stop() == 0
    assert node.stdout().strip() == ""
    assert not (node.workdir / "off").exists()
