"""`tollway config validate` from stdin, with the `plugins` setting, with router lint
warnings; `tollway file openapi2tollway` → validate → `tollway route test` — the real
command as a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_node_support import tollway

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "tests" / "unit" / "reconcile" / "openapi_fixtures" / "user-order-api.yaml"
STAMP = ROOT / "examples" / "plugins" / "tollway-header-stamp"

TIE = """_format_version: "3.0"
services:
- name: svc
  url: http://up:80
  routes:
  - {name: first, paths: [/x], methods: [GET]}
  - {name: second, paths: [/x], methods: [GET]}
  - {name: other, paths: [/y]}
"""


def test_validate_reads_stdin_yaml_and_json() -> None:
    r = tollway("config", "validate", "-", input=(ROOT / "examples" / "gateway.yaml").read_text())
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "-: OK", "")
    doc = yaml.safe_load((ROOT / "examples" / "gateway-noplugins.yaml").read_text())
    r = tollway("config", "validate", "--json-output", "/dev/stdin", input=json.dumps(doc))
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["valid"] is True and report["files"][0]["file"] == "/dev/stdin"
    assert report["files"][0]["warnings"] == []
    # merged with a file, errors located in '-'
    r = tollway("config", "validate", "--merge", "-", str(ROOT / "examples" / "consumers.yaml"),
                input="_format_version: '3.0'\nservices:\n- name: s\n  url: 42\n")
    assert r.returncode == 1
    assert "-:4: services[0].url: expected a string" in r.stderr
    r = tollway("config", "validate", "-", "-", input="{}")
    assert r.returncode == 1 and "only once" in r.stderr


def test_validate_warns_about_routes_that_never_match() -> None:
    r = tollway("config", "validate", "-", input=TIE)
    assert r.returncode == 0  # warnings do not change the exit status
    assert r.stdout.strip() == "-: OK"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    # ids of named routes are uuid5 of the name: 'second' has the greater one and wins
    assert lines[0].startswith("-: warning: route 'first' can never match: route 'second'")
    r = tollway("config", "validate", "--json-output", "-", input=TIE)
    assert r.returncode == 0
    (warning,) = json.loads(r.stdout)["files"][0]["warnings"]
    assert warning == {"kind": "tie", "route": "first", "by": "second", "paths": ["/x"],
                       "message": lines[0].removeprefix("-: warning: ")}
    r = tollway("config", "validate", "--merge", "--json-output", "-", input=TIE)
    assert [w["route"] for w in json.loads(r.stdout)["warnings"]] == ["first"]


def test_seed_configuration_has_no_warnings() -> None:
    r = tollway("config", "validate", str(ROOT / "examples" / "gateway.yaml"))
    assert (r.returncode, r.stderr) == (0, "")


@pytest.fixture(scope="module")
def stamp_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin pip-installed into a directory (no index, no network)."""
    base = tmp_path_factory.mktemp("validate-stamp")
    src = base / "src"
    shutil.copytree(STAMP, src, ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                              "__pycache__"))
    site = base / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
         "--no-index", "--target", str(site), str(src)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return site


def test_validate_honours_the_plugins_setting(stamp_site: Path) -> None:
    doc = ("_format_version: '3.0'\nservices:\n- name: s\n  url: http://up\n  plugins:\n"
           "  - name: header-stamp\n    config: {value: hi}\n")
    env = {"PYTHONPATH": str(stamp_site)}
    r = tollway("config", "validate", "-", input=doc, env=env)
    assert r.returncode == 1
    assert ("plugin 'header-stamp' not enabled; add it to the 'plugins' configuration "
            "property") in r.stderr
    r = tollway("config", "validate", "-", input=doc,
                env={**env, "TOLLWAY_PLUGINS": "bundled,header-stamp"})
    assert (r.returncode, r.stdout.strip()) == (0, "-: OK"), r.stderr
    # its schema is applied: a wrong config type is named
    bad = doc.replace("{value: hi}", "{value: 3}")
    r = tollway("config", "validate", "-", input=bad,
                env={**env, "TOLLWAY_PLUGINS": "bundled,header-stamp"})
    assert r.returncode == 1 and "services[0].plugins[0].config.value" in r.stderr
    r = tollway("config", "validate", "-", input=doc, env={"TOLLWAY_PLUGINS": "nope"})
    assert r.returncode == 1 and "'nope' is neither bundled nor installed" in r.stderr


def test_openapi2tollway_then_validate_then_route_test(tmp_path: Path) -> None:
    out = tmp_path / "kong.yaml"
    r = tollway("file", "openapi2tollway", "-s", str(SPEC), "--select-tag", "team-users",
                "-o", str(out))
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(out.read_text())
    assert all(s["tags"] == ["team-users"] for s in doc["services"])
    r = tollway("config", "validate", str(out))
    assert (r.returncode, r.stderr) == (0, ""), r.stderr  # valid, and no dead route
    expected = {
        ("GET", "/api/users"): ("user-service_listusers",
                                "http://user-service:1080/api/users"),
        ("POST", "/api/users"): ("user-service_createuser",
                                 "http://user-service:1080/api/users"),
        ("GET", "/api/users/me"): ("user-service_api-users-me_get",
                                   "http://user-service:1080/api/users/me"),
        ("GET", "/api/users/42"): ("user-service_getuser",
                                   "http://user-service:1080/api/users/42"),
        ("GET", "/api/users/42/orders/7"): (
            "user-service_api-users-userid-orders-order-id_get",
            "http://order-service:1080/v2/api/users/42/orders/7"),
    }
    for (method, path), (route, url) in expected.items():
        r = tollway("route", "test", "--config", str(out), method, path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"route:    {route}\n" in r.stdout
        assert f"upstream: {method} {url}\n" in r.stdout
    r = tollway("route", "test", "--config", str(out), "POST", "/api/users")
    assert "key-auth" in r.stdout and "rate-limiting" in r.stdout
    for method, path in (("PUT", "/api/users"), ("GET", "/api/users/42/extra")):
        r = tollway("route", "test", "--config", str(out), method, path)
        assert r.returncode == 1 and "404" in r.stdout
    # stdin in, JSON out; a non-OpenAPI input is named
    r = tollway("file", "openapi2tollway", "--format", "json", input=SPEC.read_text())
    assert r.returncode == 0 and json.loads(r.stdout)["services"][0]["name"] == "user-service"
    r = tollway("file", "openapi2tollway", "-s", str(ROOT / "examples" / "gateway.yaml"))
    assert r.returncode == 1
    assert "openapi: expected an OpenAPI 3 document" in r.stderr
