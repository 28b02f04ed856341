"""1 GiB each way through a real worker process with bounded memory (RSS growth < 64 MiB).

The node runs as `tollway start` in a subprocess so the worker's RSS can be read from
/proc/<pid>/status; the upstream runs in this process (asyncio thread) and neither keeps
nor produces more than one 1 MiB block at a time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from dataplane_helpers import Request, UpConn

GIB = 1 << 30
BLOCK = 1 << 20
MAX_GROWTH = 64 << 20


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


async def stream_behaviour(conn: UpConn, req: Request) -> None:
    if req.target == "/download":
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                        b"Content-Length: %d\r\n\r\n" % GIB)
        block = b"\xab" * BLOCK
        for _ in range(GIB // BLOCK):
            conn.writer.write(block)
            await conn.writer.drain()  # backpressure from the gateway
    else:
        body = str(req.body_size).encode()
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


@pytest.fixture
def node(make_upstream, tmp_path):
    up = make_upstream(stream_behaviour)
    proxy_port, admin_port = free_port(), free_port()
    cfg = tmp_path / "kong.json"
    cfg.write_text(json.dumps({"_format_version": "3.0", "services": [
        {"name": "big", "url": up.url, "routes": [{"name": "all", "paths": ["/"]}]}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")}
    env.update({
        "TOLLWAY_DATABASE": "off", "TOLLWAY_WORKERS": "1",
        "TOLLWAY_PROXY_LISTEN": f"127.0.0.1:{proxy_port}",
        "TOLLWAY_ADMIN_LISTEN": f"127.0.0.1:{admin_port}",
        "TOLLWAY_PROXY_ACCESS_LOG": "off", "TOLLWAY_PREFIX": str(tmp_path / "prefix"),
        "TOLLWAY_PROXY_ERROR_LOG": str(tmp_path / "error.log"),
    })
    tollway = Path(sys.executable).parent / "tollway"
    proc = subprocess.Popen([str(tollway), "start", "--config", str(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    admin = f"http://127.0.0.1:{admin_port}"
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"tollway start exited {proc.returncode}: "
                        f"{proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            r = httpx.get(f"{admin}/status", timeout=1)
            if r.status_code == 200 and r.json().get("workers"):
                status = r.json()
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    if status is None:
        proc.kill()
        pytest.fail("tollway did not become ready within 30 s")
    pids = [w["pid"] for w in status["workers"]]
    assert len(pids) == 1
    yield {"proxy": f"http://127.0.0.1:{proxy_port}", "pid": pids[0], "upstream": up}
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class RssSampler:
    """Samples the worker's VmRSS every 50 ms while a transfer runs (for the report)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, proc_kib(self.pid, "VmRSS") * 1024)
            except (OSError, KeyError):
                return
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join(2)


@pytest.mark.slow
def test_one_gib_each_way_with_bounded_memory(node):
    pid = node["pid"]
    with httpx.Client(base_url=node["proxy"], timeout=60) as client:
        # warm up: first request, connection pools, lazily allocated buffers
        warm = client.post("/upload", content=b"x" * BLOCK)
        assert warm.status_code == 200 and warm.text == str(BLOCK)
        baseline = proc_kib(pid, "VmRSS") * 1024
        hwm_before = proc_kib(pid, "VmHWM") * 1024

        def blocks():
            block = b"\xcd" * BLOCK
            for _ in range(GIB // BLOCK):
                yield block

        t0 = time.monotonic()
        with RssSampler(pid) as up_sampler:
            resp = client.post("/upload", content=blocks())
        upload_s = time.monotonic() - t0
        assert resp.status_code == 200
        assert resp.text == str(GIB), "the upstream must receive every byte of the upload"

        t0 = time.monotonic()
        received = 0
        with RssSampler(pid) as down_sampler, client.stream("GET", "/download") as r:
            assert r.status_code == 200
            assert r.headers["content-length"] == str(GIB)
            for part in r.iter_raw(BLOCK):
                received += len(part)
        download_s = time.monotonic() - t0
        assert received == GIB

    hwm = proc_kib(pid, "VmHWM") * 1024
    rss_after = proc_kib(pid, "VmRSS") * 1024
    # VmHWM only says something about the transfers if it rose during them; the sampled
    # peaks cover the case where the start-up peak was already higher.
    growth = max(hwm - baseline if hwm > hwm_before else 0,
                 up_sampler.peak - baseline, down_sampler.peak - baseline,
                 rss_after - baseline)
    report = (f"baseline RSS {baseline >> 20} MiB, HWM before {hwm_before >> 20} MiB, "
              f"HWM after {hwm >> 20} MiB, sampled peaks up {up_sampler.peak >> 20} / down "
              f"{down_sampler.peak >> 20} MiB, RSS after {rss_after >> 20} MiB; upload "
              f"{upload_s:.1f} s, download {download_s:.1f} s")
    print(report)
    assert growth < MAX_GROWTH, f"worker memory grew by {growth >> 20} MiB: {report}"
