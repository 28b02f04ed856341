"""scripts/blue-green-deploy.sh without a cluster: a fake `kubectl` on PATH records every call
(and keeps gateway-service's selector in a file), a wrapper around the real `tollway smoke`
records when it ran and how it ended, and the smoke test goes to a real `tollway start`.
The tests read the one call log to check the order: apply, rollout, smoke, and the selector
patch only after a passing smoke test; a failing one deletes the new color instead."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_support import REPO, TOLLWAY
from node_support import Node, Upstream, config_doc, free_port, service

SCRIPT = REPO / "scripts" / "blue-green-deploy.sh"

# The fake: argv to the log; `get service gateway-service` answers the selector file;
# `patch` rewrites it; `rollout status` fails when FAKE_ROLLOUT_FAIL is set.
FAKE_KUBECTL = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["BG_LOG"], "a") as f:
    f.write("kubectl " + " ".join(args) + "\\n")
state = os.environ["BG_SELECTOR"]
if args[:2] == ["-n", "gateway"]:
    args = args[2:]
if args[:3] == ["get", "service", "gateway-service"]:
    print(open(state).read().strip(), end="")
elif args[:3] == ["patch", "service", "gateway-service"]:
    patch = json.loads(args[args.index("-p") + 1])
    open(state, "w").write(patch["spec"]["selector"]["version"])
elif args[:2] == ["rollout", "status"] and os.environ.get("FAKE_ROLLOUT_FAIL"):
    print("error: timed out waiting for the condition", file=sys.stderr)
    sys.exit(1)
"""

SMOKE_WRAPPER = """#!/usr/bin/env bash
echo "tollway $*" >> "$BG_LOG"
{tollway} "$@"
rc=$?
echo "smoke exit $rc" >> "$BG_LOG"
exit $rc
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A node with /health (to an upstream) and /broken (to a port nothing listens on)."""
    work = tmp_path_factory.mktemp("blue-green-node")
    upstream = Upstream("bg")
    config = config_doc(service("app", upstream.url, {"health": ["/health"]}),
                        service("down", f"http://127.0.0.1:{free_port()}",
                                {"broken": ["/broken"]}))
    node = Node(work, config=config, workers=1, env={"TOLLWAY_DATABASE": "off"}).start()
    try:
        yield node
    finally:
        node.stop()
        upstream.stop()


class Run:
    def __init__(self, tmp: Path, node: Node, selector: str) -> None:
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        kubectl = bin_dir / "kubectl"
        kubectl.write_text(FAKE_KUBECTL.format(python=sys.executable))
        smoke = bin_dir / "tollway-smoke"
        smoke.write_text(SMOKE_WRAPPER.format(tollway=TOLLWAY))
        for f in (kubectl, smoke):
            f.chmod(0o755)
        self.log = tmp / "calls.log"
        self.selector = tmp / "selector"
        self.selector.write_text(selector)
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "BG_LOG": str(self.log), "BG_SELECTOR": str(self.selector),
            "TOLLWAY": str(smoke), "SMOKE_URL": node.proxy_url, "SMOKE_RETRIES": "0",
        }

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SCRIPT), *args], env={**self.env, **env},
                              capture_output=True, text=True, timeout=120)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()


def _verbs(calls: list[str]) -> list[str]:
    """Each call shortened to what it did: `apply green`, `smoke 0`, `patch green`..."""
    out = []
    for c in calls:
        words = c.split()
        if words[0] == "kubectl":
            verb = words[3]
            if verb == "get":
                out.append("get")
            elif verb in ("apply", "delete"):
                out.append(f"{verb} {words[-1].rsplit('/', 1)[-1]}")
            elif verb == "rollout":
                out.append(f"rollout {words[5].removeprefix('deployment/')}")
            elif verb == "patch":
                out.append("patch " + words[-1].split('"version":"')[1].split('"')[0])
            elif verb == "set":
                out.append(f"set-image {words[-1]}")
        elif words[0] == "smoke":
            out.append(f"smoke {words[2]}")
    return out


def test_deploy_switches_only_after_a_passing_smoke_test(tmp_path: Path,
                                                         gateway: Node) -> None:
    run = Run(tmp_path, gateway, "blue")
    proc = run(SMOKE_ROUTES="/health")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _verbs(run.calls()) == ["get", "apply green", "rollout gateway-green",
                                   "smoke 0", "patch green", "get"]
    assert run.selector.read_text() == "green"
    smoke = next(c for c in run.calls() if c.startswith("tollway"))
    assert smoke == f"tollway smoke {gateway.proxy_url} --route /health --retries 0"
    assert "-k deploy/k8s/overlays/green" in run.calls()[1]
    assert "Old environment (blue) kept for rollback" in proc.stdout
    # the second deploy goes back the other way
    proc = run(SMOKE_ROUTES="/health")
    assert proc.returncode == 0, proc.stderr
    assert run.selector.read_text() == "blue"


def test_failing_smoke_test_deletes_the_new_color_and_keeps_traffic(
        tmp_path: Path, gateway: Node) -> None:
    run = Run(tmp_path, gateway, "green")
    proc = run(SMOKE_ROUTES="/health /broken")  # /broken answers 502
    assert proc.returncode == 1
    assert _verbs(run.calls()) == ["get", "apply blue", "rollout gateway-blue", "smoke 1",
                                   "delete blue"]
    assert run.selector.read_text() == "green"
    assert "Smoke tests failed" in proc.stderr


def test_rollout_that_never_gets_ready_is_removed_without_a_smoke_test(
        tmp_path: Path, gateway: Node) -> None:
    run = Run(tmp_path, gateway, "blue")
    proc = run(FAKE_ROLLOUT_FAIL="1")
    assert proc.returncode == 1
    assert _verbs(run.calls()) == ["get", "apply green", "rollout gateway-green",
                                   "delete green"]
    assert run.selector.read_text() == "blue"


def test_image_is_set_on_the_new_color_before_the_wait(tmp_path: Path,
                                                       gateway: Node) -> None:
    run = Run(tmp_path, gateway, "blue")
    proc = run(SMOKE_ROUTES="/health", IMAGE="registry.example.com/tollway:0.2.0")
    assert proc.returncode == 0, proc.stderr
    assert _verbs(run.calls())[:4] == ["get", "apply green",
                                       "set-image tollway=registry.example.com/tollway:0.2.0",
                                       "rollout gateway-green"]


def test_rollback_returns_traffic_to_the_old_color_after_its_smoke_test(
        tmp_path: Path, gateway: Node) -> None:
    run = Run(tmp_path, gateway, "green")
    proc = run("rollback", SMOKE_ROUTES="/health")
    assert proc.returncode == 0, proc.stderr
    assert _verbs(run.calls()) == ["get", "rollout gateway-blue", "smoke 0", "patch blue",
                                   "get"]
    assert run.selector.read_text() == "blue"
    # an old color that fails its smoke test is not switched to
    proc = run("rollback", SMOKE_ROUTES="/broken")
    assert proc.returncode == 1
    assert run.selector.read_text() == "blue"


@pytest.mark.parametrize("selector", ["", "canary"])
def test_a_selector_that_is_not_blue_or_green_is_refused(tmp_path: Path, gateway: Node,
                                                         selector: str) -> None:
    run = Run(tmp_path, gateway, selector)
    proc = run()
    assert proc.returncode == 2
    assert "expected blue or green" in proc.stderr
    assert _verbs(run.calls()) == ["get"]
