"""The bench's targets-4 scenario configs (bench/_systems.py, bench/_nginx.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from tollway.config.declarative import validate

# `bench` is a script directory at the repository root, not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from bench import _nginx, _systems

PORTS = [18081, 18082, 18083, 18084]


def test_tollway_targets_config_validates_and_names_four_targets() -> None:
    text = _systems.tollway_targets_yaml(PORTS)
    doc = yaml.safe_load(text)
    validate(doc)  # raises on any problem
    (upstream,) = doc["upstreams"]
    assert [t["target"] for t in upstream["targets"]] == [f"127.0.0.1:{p}" for p in PORTS]
    (service,) = doc["services"]
    assert service["host"] == upstream["name"]
    assert [r["paths"] for r in service["routes"]] == [["/"]]


def test_nginx_proxy_upstream_block_has_one_server_per_target() -> None:
    conf = _nginx.proxy_conf(Path("/tmp/x"), 8000, 9000, 1, target_ports=PORTS)
    block = conf.split("upstream up {", 1)[1].split("}", 1)[0]
    assert [line.strip() for line in block.splitlines() if "server " in line] == [
        f"server 127.0.0.1:{p};" for p in PORTS
    ]
    assert "keepalive 128;" in block
    assert "127.0.0.1:9000" not in conf  # the single-upstream port is not a target


def test_nginx_proxy_without_targets_keeps_the_single_upstream() -> None:
    conf = _nginx.proxy_conf(Path("/tmp/x"), 8000, 9000, 1)
    assert "server 127.0.0.1:9000;" in conf


def test_upstream_listens_on_target_ports_and_names_them() -> None:
    conf = _nginx.upstream_conf(Path("/tmp/x"), 9000, PORTS)
    for p in PORTS:
        assert f"listen 127.0.0.1:{p} backlog=4096;" in conf
    assert f"add_header {_nginx.TARGET_HEADER} $server_port;" in conf
    # Without targets the upstream is unchanged: no extra server, no header.
    plain = _nginx.upstream_conf(Path("/tmp/x"), 9000)
    assert _nginx.TARGET_HEADER not in plain and plain.count("server {") == 1
