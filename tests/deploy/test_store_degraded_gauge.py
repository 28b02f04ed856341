"""gateway_rate_limit_store_degraded follows one Redis through an outage: 0 while it answers,
1 from the first failed call, 0 again after the first call that succeeds — against a real
redis-server stopped and started on the same port, through the backend the redis policy uses
(the fault-tolerant fallback around it is the plugin's own tests' concern)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import redis
from deploy_support import skip_or_fail
from node_support import free_port, wait_until

from tollway import metrics
from tollway.plugins.rate_limiting.redis_policy import DEGRADED, backend_for


def _redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: redis.Redis(port=port, socket_timeout=1).ping(), 10,
               what="redis-server")
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)


def test_degraded_from_a_failure_to_the_next_success(tmp_path: Path) -> None:
    if not shutil.which("redis-server"):
        skip_or_fail("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    conf = {"port": port, "database": 0, "timeout": 500}
    worker: dict[str, object] = {}
    backend = backend_for(worker, conf, "127.0.0.1")
    registry = metrics.for_worker(worker)

    def value() -> str:
        lines = [line for line in registry.render().splitlines()
                 if line.startswith(DEGRADED + "{")]
        assert lines == [f'{DEGRADED}{{host="127.0.0.1",port="{port}"}} ' + lines[0][-1]]
        return lines[0][-1]

    async def call() -> bool:
        try:
            await backend.incr(["gauge-test:minute"], [60])
        except Exception as exc:
            backend.failed(exc)
            return False
        backend.succeeded()
        return True

    async def outage() -> None:
        # one event loop for the whole sequence: the client's pool belongs to it
        assert value() == "0"  # the series exists before any request
        server = _redis(port, tmp_path)
        try:
            assert await call() is True
            assert value() == "0"
        finally:
            _stop(server)
        assert await call() is False
        assert value() == "1"
        assert await call() is False
        assert value() == "1"
        server = _redis(port, tmp_path)
        try:
            assert await call() is True
            assert value() == "0"
        finally:
            _stop(server)

    asyncio.run(outage())
    # a node merges its workers with max: one worker in the outage marks the node degraded
    other = metrics.Registry()
    metrics.Registry.gauge(other, DEGRADED, "", ("host", "port"), aggregate="max").set(
        ("127.0.0.1", str(port)), 1)
    merged = metrics.merge([registry.export(), other.export()])
    assert merged[DEGRADED]["series"] == [[["127.0.0.1", str(port)], 1]]
