"""The seed's configuration workflow, step by step, with tollway instead of decK and
`kong config parse` (`../shared/seed/api-gateway-workflows.md`: Gateway Configuration
Workflow, Configuration as Code, the runbook's emergency rate limit and rollback, the CI
pipeline's backup):

    generate (Builder) → validate → sync → diff (no drift) → patch an emergency limit →
    sync → rollback → dump
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from node_support import TOLLWAY_CMD, Node, Upstream

from tollway.config.builder import Builder

ROOT = Path(__file__).resolve().parents[2]
EMERGENCY_PATCH = ROOT / "examples" / "environments" / "emergency-rate-limit.yaml"


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Upstream]]:
    upstream = Upstream("user-service")
    node = Node(tmp_path_factory.mktemp("workflow"), workers=1).start()
    try:
        yield node, upstream
    finally:
        node.stop()
        upstream.stop()


def tollway(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")}
    env["TOLLWAY_ADMIN_URL"] = node.admin_url
    return subprocess.run([*TOLLWAY_CMD, *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_seed_configuration_workflow(stack: tuple[Node, Upstream]) -> None:
    node, upstream = stack
    # 1. generate: the seed's GatewayConfigGenerator usage, with the Builder
    (Builder()
     .add_service("user-service", upstream.url, [
         {"name": "users", "methods": ["GET", "POST"], "paths": ["/api/users"],
          "strip_path": False}])
     .add_rate_limiting("user-service", 100)
     .export("config/gateway.yaml"))
    # 2. validate (the seed's validate-config.sh)
    r = tollway(node, "config", "validate", "config/gateway.yaml")
    assert r.returncode == 0, r.stderr
    # 3. apply (the seed's apply-config.sh: deck sync --select-tag dev)
    r = tollway(node, "config", "sync", "config/gateway.yaml", "--select-tag", "dev",
                "-m", "initial")
    assert r.returncode == 0, r.stderr
    first = node.status()["configuration_revision"]
    assert f"Applied as revision {first}." in r.stdout
    assert node.get("/api/users").headers["x-ratelimit-limit-minute"] == "100"
    # 4. diff: no drift
    r = tollway(node, "config", "diff", "config/gateway.yaml", "--select-tag", "dev",
                "--non-zero-exit-code")
    assert r.returncode == 0, r.stdout
    # 5. incident: patch an emergency limit (the runbook), then sync it
    r = tollway(node, "file", "patch", "-s", "config/gateway.yaml", str(EMERGENCY_PATCH),
                "-o", "config/gateway.yaml")
    assert r.returncode == 0, r.stderr
    r = tollway(node, "config", "diff", "config/gateway.yaml", "--select-tag", "dev",
                "--non-zero-exit-code")
    assert r.returncode == 2
    assert '-    "minute": 100,' in r.stdout and '+    "minute": 20,' in r.stdout
    r = tollway(node, "config", "sync", "config/gateway.yaml", "--select-tag", "dev",
                "-m", "emergency rate limit")
    assert r.returncode == 0, r.stderr
    assert node.get("/api/users").headers["x-ratelimit-limit-minute"] == "20"
    # 6. rollback once the incident is over
    r = tollway(node, "config", "rollback", "--to", str(first), "-m", "incident over")
    assert r.returncode == 0, r.stderr
    assert node.get("/api/users").headers["x-ratelimit-limit-minute"] == "100"
    history = tollway(node, "config", "history").stdout
    assert "emergency rate limit" in history and "incident over" in history
    # 7. dump: the CI pipeline's pre-deploy backup, which syncs back with no drift
    r = tollway(node, "config", "dump", "-o", "backup.yaml")
    assert r.returncode == 0, r.stderr
    backup = yaml.safe_load(Path("backup.yaml").read_text())
    plugin = backup["services"][0]["plugins"][0]
    assert plugin["name"] == "rate-limiting" and plugin["config"]["minute"] == 100
    assert plugin["tags"] == ["dev"]
    r = tollway(node, "config", "diff", "backup.yaml", "--non-zero-exit-code")
    assert r.returncode == 0, r.stdout
