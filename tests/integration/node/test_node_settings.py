"""Settings: `tollway.conf` (kong.conf syntax) via `--conf`, `TOLLWAY_*` variables, errors."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from node_support import Node, Upstream, free_port, simple_config

from tollway import __version__

LATENCY = ("x-tollway-upstream-latency", "x-tollway-proxy-latency",
           "x-tollway-response-latency")


def test_conf_file_via_conf_flag(node_factory: Callable[..., Node], up1: Upstream,
                                 tmp_path: Path) -> None:
    proxy, admin = free_port(), free_port()
    conf = tmp_path / "tollway.conf"
    conf.write_text(
        "# a kong.conf-style file\n"
        f"proxy_listen = 127.0.0.1:{proxy}   # trailing comment\n"
        f"ADMIN_LISTEN=127.0.0.1:{admin}\n"
        "\n"
        "workers = 1\n"
        "headers = server_tokens\n"
    )
    # the conf file names the listeners: the fixture's TOLLWAY_* listeners are unset
    node = node_factory(config=simple_config(up1.url), args=["--conf", str(conf)],
                        env={"TOLLWAY_PROXY_LISTEN": None, "TOLLWAY_ADMIN_LISTEN": None,
                             "TOLLWAY_WORKERS": None}, start=False)
    node.proxy_port, node.admin_port = proxy, admin
    node.proxy_url, node.admin_url = f"http://127.0.0.1:{proxy}", f"http://127.0.0.1:{admin}"
    node.start()
    assert len(node.status()["workers"]) == 1
    r = node.get("/a")
    assert r.status_code == 200
    assert r.headers["via"] == f"1.1 tollway/{__version__}"
    for h in LATENCY:
        assert h not in r.headers
    assert "x-tollway-request-id" not in r.headers
    local = node.get("/nowhere")
    assert local.status_code == 404
    assert local.headers["server"] == f"tollway/{__version__}"
    assert node.admin("GET", "/").json()["configuration"]["workers"] == "1"


def test_env_overrides_conf_file(node_factory: Callable[..., Node], up1: Upstream,
                                 tmp_path: Path) -> None:
    conf = tmp_path / "tollway.conf"
    conf.write_text("workers = 3\nheaders = off\n")
    node = node_factory(config=simple_config(up1.url), args=["--conf", str(conf)],
                        env={"TOLLWAY_WORKERS": "2"})
    assert len(node.status()["workers"]) == 2
    r = node.get("/a")  # from the conf file: no gateway headers at all
    assert "via" not in r.headers and "x-tollway-request-id" not in r.headers


def test_tollway_conf_env_names_the_conf_file(node_factory: Callable[..., Node],
                                              up1: Upstream, tmp_path: Path) -> None:
    conf = tmp_path / "tollway.conf"
    conf.write_text("workers = 1\n")
    node = node_factory(config=simple_config(up1.url),
                        env={"TOLLWAY_CONF": str(conf), "TOLLWAY_WORKERS": None})
    assert len(node.status()["workers"]) == 1


def test_headers_off_removes_via_server_and_latency_headers(
        node_factory: Callable[..., Node], up1: Upstream) -> None:
    default = node_factory(name="default", config=simple_config(up1.url))
    r = default.get("/a")
    assert r.headers["via"] == f"1.1 tollway/{__version__}"
    assert "x-tollway-upstream-latency" in r.headers
    assert default.get("/nowhere").headers["server"] == f"tollway/{__version__}"

    node = node_factory(config=simple_config(up1.url), env={"TOLLWAY_HEADERS": "off"})
    r = node.get("/a")
    assert r.status_code == 200
    assert "via" not in r.headers
    # the upstream's own Server header passes through untouched
    assert "tollway" not in r.headers.get("server", "")
    for h in LATENCY:
        assert h not in r.headers
    local = node.get("/nowhere")
    assert local.status_code == 404
    assert "server" not in local.headers
    for h in LATENCY:
        assert h not in local.headers


def run_failing(node_factory: Callable[..., Node], **kwargs: object) -> Node:
    node = node_factory(start=False, **kwargs)
    rc = node.run(timeout=20)
    assert rc == 1, f"exit {rc}\nstdout:\n{node.stdout()}\nstderr:\n{node.stderr()}"
    return node


@pytest.mark.parametrize(("env", "setting"), [
    ({"TOLLWAY_WORKERS": "many"}, "workers"),
    ({"TOLLWAY_WORKERS": "0"}, "workers"),
    ({"TOLLWAY_PROXY_LISTEN": "127.0.0.1:http"}, "proxy_listen"),
    ({"TOLLWAY_ADMIN_LISTEN": "127.0.0.1:70000"}, "admin_listen"),
    ({"TOLLWAY_DATABASE": "mongodb"}, "database"),
    ({"TOLLWAY_HEADERS": "server_tokens, x-bogus"}, "headers"),
    ({"TOLLWAY_GRACEFUL_TIMEOUT": "soon"}, "graceful_timeout"),
    ({"TOLLWAY_REAL_IP_RECURSIVE": "maybe"}, "real_ip_recursive"),
    ({"TOLLWAY_TRUSTED_IPS": "10.0.0.0/99"}, "trusted_ips"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_setting_value_exits_1_naming_the_setting(node_factory: Callable[..., Node],
                                                      env: dict[str, str],
                                                      setting: str) -> None:
    node = run_failing(node_factory, env=env)
    assert setting in node.stderr(), node.stderr()
    assert "Traceback" not in node.stderr(), node.stderr()


def test_unknown_setting_in_conf_exits_1_naming_it(node_factory: Callable[..., Node],
                                                   tmp_path: Path) -> None:
    conf = tmp_path / "tollway.conf"
    conf.write_text("workers = 1\nproxy_listn = 0.0.0.0:9000\n")
    node = run_failing(node_factory, args=["--conf", str(conf)])
    assert "proxy_listn" in node.stderr(), node.stderr()
    assert "Traceback" not in node.stderr()


def test_bad_value_in_conf_exits_1_naming_the_setting(node_factory: Callable[..., Node],
                                                      tmp_path: Path) -> None:
    conf = tmp_path / "tollway.conf"
    conf.write_text("workers = lots\n")
    node = run_failing(node_factory, args=["--conf", str(conf)],
                       env={"TOLLWAY_WORKERS": None})
    assert "workers" in node.stderr(), node.stderr()


def test_missing_conf_file_exits_1(node_factory: Callable[..., Node], tmp_path: Path) -> None:
    node = run_failing(node_factory, args=["--conf", str(tmp_path / "absent.conf")])
    assert "absent.conf" in node.stderr(), node.stderr()


@pytest.mark.parametrize(("admin_host", "status"), [
    ("127.0.0.1", None), ("0.0.0.0", None), ("127.0.0.2", "127.0.0.1"),
])
def test_two_listeners_on_one_address_exit_1(node_factory: Callable[..., Node],
                                              admin_host: str, status: str | None) -> None:
    """The proxy binds with SO_REUSEPORT: without this check the admin (or status) listener
    bound the same port too and took some of the proxy's connections."""
    port = free_port()
    env = {"TOLLWAY_PROXY_LISTEN": f"127.0.0.1:{port}",
           "TOLLWAY_ADMIN_LISTEN": f"{admin_host}:{free_port() if status else port}"}
    if status:
        env["TOLLWAY_STATUS_LISTEN"] = f"{status}:{port}"
    node = run_failing(node_factory, env=env)
    err = node.stderr()
    clash = "status_listen" if status else "admin_listen"
    assert f"{clash}: " in err and f":{port} is also in proxy_listen" in err, err
    assert "Traceback" not in err and "tollway started" not in err, err


@pytest.mark.parametrize("setting", ["proxy_listen", "admin_listen"])
def test_port_in_use_exits_1(node_factory: Callable[..., Node], up1: Upstream,
                             setting: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        node = run_failing(node_factory, config=simple_config(up1.url),
                           env={f"TOLLWAY_{setting.upper()}": f"127.0.0.1:{port}"})
    err = node.stderr()
    assert str(port) in err or "in use" in err, err
    assert "Traceback" not in err, err
    # no worker outlives the failed start
    assert "tollway started" not in err


def test_status_listen_serves_status_only(node_factory: Callable[..., Node],
                                          up1: Upstream) -> None:
    port = free_port()
    node = node_factory(config=simple_config(up1.url),
                        env={"TOLLWAY_STATUS_LISTEN": f"127.0.0.1:{port}"})
    base = f"http://127.0.0.1:{port}"
    r = httpx.get(base + "/status", timeout=5)
    assert r.status_code == 200
    assert r.json()["configuration_hash"] == node.status()["configuration_hash"]
    assert httpx.get(base + "/status/ready", timeout=5).json() == {"message": "ready"}
    assert httpx.get(base + "/config", timeout=5).status_code == 404
    assert httpx.post(base + "/config", json={"_format_version": "3.0"},
                      timeout=5).status_code in (404, 405)
