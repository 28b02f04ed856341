"""The seed's own tests (`../shared/seed/api-gateway-workflows.md`, Testing Strategy) run
against tollway: `test_config.py` verbatim against the example config, `test_integration.py`
against a gateway started here exactly as `make run` starts it — the seed's `gateway.yaml`
unmodified, the demo consumer beside it, two `tollway mock` upstreams — on free ports.
Lines changed in the seed's tests are marked `# tollway:` with the reason."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration" / "node"))

from node_support import Node  # noqa: E402
from seed_stack_support import flush_rate_limit_keys  # noqa: E402

# Upstream mocks on their own loopback addresses, port 1080 as in the seed's compose file.
MOCKS = {"user-service": "127.0.1.2", "order-service": "127.0.1.3"}
DEMO_TOKEN_PREFIX = "#   eyJ"


@pytest.fixture(autouse=True)
def seed_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed's tests open `config/gateway.yaml` relative to the working directory."""
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "examples" / "gateway.yaml", tmp_path / "config" / "gateway.yaml")
    monkeypatch.chdir(tmp_path)


def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mock on {host}:{port} exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mock on {host}:{port} did not listen")


@pytest.fixture(scope="session")
def seed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    work = tmp_path_factory.mktemp("seed")
    hosts = work / "hosts"
    hosts.write_text("".join(f"{ip} {name}\n" for name, ip in MOCKS.items())
                     + "127.0.0.1 redis\n")
    mocks = []
    try:
        for name, ip in MOCKS.items():
            with open(work / f"{name}.log", "wb") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "tollway", "mock", "--expectations",
                     str(ROOT / "examples" / "mocks" / f"{name}.json"), "--listen",
                     f"{ip}:1080"], stdout=subprocess.DEVNULL, stderr=log)
            mocks.append(proc)
            _wait_port(ip, 1080, proc)
        flush_rate_limit_keys()
        node = Node(work / "node", env={"TOLLWAY_DNS_HOSTSFILE": str(hosts)},
                    args=["--config", str(ROOT / "examples" / "gateway.yaml"),
                          "--config", str(ROOT / "examples" / "consumers.yaml")])
        node.start()
        try:
            yield node
        finally:
            node.stop()
    finally:
        for proc in mocks:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture
def gateway_url(seed_stack: Node) -> str:
    return seed_stack.proxy_url


@pytest.fixture(scope="session")
def demo_token() -> str:
    text = (ROOT / "examples" / "consumers.yaml").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith(DEMO_TOKEN_PREFIX))
    return line[2:].strip()
