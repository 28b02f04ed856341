"""docs/runbooks: every command in a ```sh block runs, in page order, against a real
`tollway start` (SQLite store, the seed's gateway.yaml as `kong.yaml`, with a circuit-breaker
plugin on order-service). A command whose
tollway subcommand or Admin API endpoint has not landed yet is skipped naming it."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from deploy_support import REPO, TOLLWAY, skip_or_fail
from node_support import Node, free_port

RUNBOOKS = REPO / "docs" / "runbooks"
# Sent by the commands as production needs; the node's loopback admin listener takes no token
# (node_support's readiness probe sends none).
TOKEN = "runbook-test-token"
BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def _commands() -> list[tuple[str, str]]:
    out = []
    for page in sorted(RUNBOOKS.glob("*.md")):
        for block in BLOCK.findall(page.read_text()):
            for line in block.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    out.append((page.name, line.strip()))
    return out


COMMANDS = _commands()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Path, str]]:
    if not shutil.which("curl"):
        skip_or_fail("curl not installed (apt-get install curl)")
    work = tmp_path_factory.mktemp("runbooks")
    state = work / "kong.yaml"
    # the seed's file, plus the breaker that procedures.md opens and closes on order-service
    # (a service needs the circuit-breaker plugin to have a breaker at all)
    doc = yaml.safe_load((REPO / "examples" / "gateway.yaml").read_text())
    orders = next(s for s in doc["services"] if s["name"] == "order-service")
    orders.setdefault("plugins", []).append({"name": "circuit-breaker"})
    state.write_text(yaml.safe_dump(doc, sort_keys=False))
    status_port = free_port()
    n = Node(work / "node", config=state, workers=1,
             env={"TOLLWAY_STATUS_LISTEN": f"127.0.0.1:{status_port}",
                  "TOLLWAY_DNS_HOSTSFILE": str(REPO / "examples" / "hosts")}).start()
    httpx.get(n.proxy_url + "/api/orders")  # something in the metrics
    try:
        yield n, work, f"http://127.0.0.1:{status_port}"
    finally:
        n.stop()


def test_runbooks_have_commands() -> None:
    assert len(COMMANDS) >= 10
    assert any("circuit-breaker" in c for _, c in COMMANDS)
    assert any(c.startswith("tollway config rollback") for _, c in COMMANDS)


@pytest.mark.parametrize(("page", "command"), COMMANDS,
                         ids=[f"{p}:{c[:60]}" for p, c in COMMANDS])
def test_runbook_command_runs(node: tuple[Node, Path, str], page: str, command: str) -> None:
    n, work, status_url = node
    env = {"PATH": f"{Path(TOLLWAY).parent}:/usr/bin:/bin", "TOLLWAY_ADMIN_URL": n.admin_url,
           "TOLLWAY_ADMIN_TOKEN": TOKEN, "STATUS_URL": status_url, "HOME": str(work)}
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=work, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{page}: {command}\n{proc.stdout}\n{proc.stderr}"
