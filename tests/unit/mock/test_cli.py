"""`tollway mock` as a process: bad files exit 1 with the error; good files serve."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]


def tollway(*args: str) -> subprocess.Popen[str]:
    # `python -m tollway` from the checkout, so no editable install is needed.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tollway", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_bad_file_exits_1_naming_file_and_json_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"httpResponse": {"delay": {"timeUnit": "SECONDS"}}}, {}]))
    process = tollway("mock", "--expectations", str(bad), "--listen", "127.0.0.1:0")
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    assert f"Error: {bad}: $[1]: missing field 'httpResponse'" in stderr


def test_bad_listen_is_a_usage_error(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text("[]")
    process = tollway("mock", "--expectations", str(good), "--listen", "nowhere")
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 64
    assert "HOST:PORT" in stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serves_example_files() -> None:
    port = free_port()
    process = tollway(
        "mock",
        "--expectations",
        "examples/mocks/user-service.json",
        "--expectations",
        "examples/mocks/order-service.json",
        "--listen",
        f"127.0.0.1:{port}",
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status = httpx.put(f"http://127.0.0.1:{port}/mockserver/status", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "mock did not start"
                time.sleep(0.05)
        assert status.json() == {"ports": [port]}
        assert httpx.get(f"http://127.0.0.1:{port}/api/users").status_code == 200
        assert httpx.post(f"http://127.0.0.1:{port}/api/orders").status_code == 201
    finally:
        process.terminate()
        process.communicate(timeout=10)
