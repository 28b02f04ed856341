"""deploy/compose/docker-compose.yml: valid against the Compose Specification schema
(tests/deploy/compose_spec.json, see compose_spec.README.md), and every service's command
runs as a process (compose_processes.py says how a container is translated): the one-shot
migrations exit 0 on a fresh PostgreSQL database, tollway answers /status and its health
check and proxies the seed's routes to the two mocks with rate limiting on the stack's Redis,
and Prometheus loads the alert rules and scrapes tollway."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import redis
import yaml
from compose_processes import COMPOSE, Stack, python_healthcheck
from deploy_support import REPO, require_tools, skip_or_fail
from node_support import wait_until

SCHEMA = Path(__file__).with_name("compose_spec.json")
TOKEN = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJkZW1vLWlzc3VlciIsInN1YiI6ImRlbW8ifQ."
         "JsfGBBuPzhyujkudzN5NKs1e4Nvp8kX_iPhmEeTYR0g")  # examples/consumers.yaml's demo JWT


def _schema_errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text()))
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(doc))


def test_compose_file_follows_the_compose_spec() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert _schema_errors(doc) == []
    # the validator does reject what compose would: a misspelt key, a bad condition
    bad = copy.deepcopy(doc)
    bad["services"]["tollway"]["comand"] = ["tollway", "start"]
    bad["services"]["tollway"]["depends_on"]["redis"]["condition"] = "service_ready"
    errors = _schema_errors(bad)
    assert any(e.startswith("services/tollway: 'comand'") for e in errors), errors
    assert any(e.startswith("services/tollway/depends_on") for e in errors), errors


def _psql(sql: str, database: str = "postgres") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-tA",
                           "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not shutil.which("psql") or _psql("SELECT 1").returncode != 0:
        skip_or_fail("PostgreSQL on 127.0.0.1:5432 (user postgres, trust) is not reachable")
    if not shutil.which("redis-server"):
        skip_or_fail("redis-server is not installed (Debian package redis-server)")
    require_tools("prometheus")
    database = f"compose_{uuid.uuid4().hex[:12]}"
    created = _psql(f'CREATE DATABASE "{database}"')
    assert created.returncode == 0, created.stderr
    s = Stack(tmp_path_factory.mktemp("compose"), database)
    try:
        for name in s.order():
            s.start(name)
            if s.services[name].get("restart") == "no":  # the one-shot migrations
                p = s.procs[name]
                assert p.proc is not None
                code = p.proc.wait(120)
                assert code == 0, f"{name} exited with {code}: {p.argv}\n{p.output()}"
            elif name == "tollway":
                # depends on tollway: service_healthy; /status on the status listener
                wait_until(lambda: _get(s, "tollway", 8100, "/status") == 200, 60,
                           what="tollway /status")
            else:
                s.wait_listening(name)
        yield s
    finally:
        s.stop()
        _psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _get(s: Stack, name: str, port: int, path: str, **kw: Any) -> int | None:
    try:
        return httpx.get(f"http://{s.address[name]}:{port}{path}", timeout=2,
                         **kw).status_code
    except httpx.HTTPError:
        return None


def test_every_service_but_postgres_ran(stack: Stack) -> None:
    assert set(stack.procs) == set(stack.services) - {"postgres"}
    for name, p in stack.procs.items():
        assert p.proc is not None
        if name != "tollway-migrations":
            assert p.proc.poll() is None, f"{name} exited:\n{p.output()}"


def test_migrations_bootstrapped_the_database(stack: Stack) -> None:
    p = stack.procs["tollway-migrations"]
    assert p.proc is not None and p.proc.returncode == 0
    assert p.env["TOLLWAY_PG_DATABASE"] == stack.database
    # tollway start (below) refuses an un-migrated database; this is the schema's version row
    version = _psql("SELECT version_num FROM alembic_version", stack.database)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip()


def test_tollway_answers_status_and_its_healthcheck(stack: Stack) -> None:
    assert _get(stack, "tollway", 8100, "/status") == 200
    assert _get(stack, "tollway", 8100, "/status/ready") == 200
    # the non-loopback admin listener needs the token (compose's default one)
    assert _get(stack, "tollway", 8001, "/status") == 401
    assert _get(stack, "tollway", 8001, "/status",
                headers={"Kong-Admin-Token": "change-me-local-only"}) == 200
    check = subprocess.run(python_healthcheck(stack, "tollway"), capture_output=True,
                           timeout=30)
    assert check.returncode == 0, check.stderr


def test_mocks_answer_directly_and_through_the_gateway(stack: Stack) -> None:
    for name in ("user-service", "order-service"):
        r = httpx.put(f"http://{stack.address[name]}:1080/mockserver/status", timeout=5)
        assert r.status_code == 200, name
    base = f"http://{stack.address['tollway']}:8000"
    assert httpx.get(base + "/api/users", timeout=5).status_code == 401  # jwt required
    r = httpx.get(base + "/api/users", headers={"Authorization": f"Bearer {TOKEN}"},
                  timeout=5)
    assert r.status_code == 200, r.text
    expected = json.loads((REPO / "examples" / "mocks" / "user-service.json").read_text())
    assert r.headers["x-ratelimit-limit-minute"] == "100"
    assert expected  # the body is the mock's; its exact shape is the mock tests' concern
    # the TLS listener (8443 ssl: the node's generated default certificate)
    tls = httpx.get(f"https://{stack.address['tollway']}:8443/api/users", verify=False,
                    timeout=5)
    assert tls.status_code == 401
    # rate limiting counts in the stack's Redis (redis_host: redis -> its address), not the
    # machine's
    client = redis.Redis(host=stack.address["redis"], port=6379, socket_timeout=2)
    assert any(b"minute" in k for k in client.keys("*")), client.keys("*")


def test_prometheus_loads_the_rules_and_scrapes_tollway(stack: Stack) -> None:
    url = f"http://{stack.address['prometheus']}:9090"
    rules = httpx.get(url + "/api/v1/rules", timeout=5).json()["data"]["groups"]
    alerts = {r["name"] for g in rules for r in g["rules"]}
    expected = {r["alert"] for g in yaml.safe_load(
        (REPO / "deploy" / "prometheus" / "alerts.yml").read_text())["groups"]
        for r in g["rules"]}
    assert alerts == expected

    def scraped() -> bool:
        targets = httpx.get(url + "/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
        return any(t["health"] == "up" and t["labels"]["job"] == "tollway" for t in targets)
    # scrape_interval is 15 s in the compose config
    wait_until(scraped, 40, interval=0.5, what="prometheus scraping tollway:8100")
