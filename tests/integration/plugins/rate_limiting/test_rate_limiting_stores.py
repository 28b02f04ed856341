"""rate-limiting against real stores: Redis (shared and our own server, killed mid-traffic),
the cluster policy's SQLite table, and a real node with two worker processes."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from dataplane_helpers import Gateway, Upstream
from node_support import Node, free_port, wait_until
from node_support import Upstream as NodeUpstream
from rl_support import doc, fresh_window, get, kill_all, redis_server

MakeGW = Callable[..., Gateway]
LOGGER = "tollway.plugins.rate-limiting"


def _redis_up(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def _missing(reason: str) -> None:
    """Skip with the reason; under CI=true every service must be there, so fail instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture
def shared_redis() -> Iterator[redis.Redis]:
    r = redis.Redis(port=6379, socket_timeout=2)
    if not _redis_up(6379):
        _missing("no Redis on 127.0.0.1:6379")
    yield r
    r.close()


def test_redis_policy_counts_in_redis(rl_gateway: MakeGW, rl_upstream: Upstream,
                                      shared_redis: redis.Redis) -> None:
    name = f"rl-{uuid.uuid4().hex[:12]}"
    d = doc(rl_upstream.url, {"minute": 3, "hour": 10, "policy": "redis",
                              "redis_host": "127.0.0.1", "redis_port": 6379}, name=name)
    gw = rl_gateway(d)
    route_id = gw.config.entities["plugins"][0]["route"]
    service_id = gw.config.entities["plugins"][0]["service"]["id"]
    assert route_id is None
    try:
        fresh_window()
        statuses = [get(gw.port).status for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        keys = sorted(k.decode() for k in shared_redis.keys(f"ratelimit:*:{service_id}:*"))
        assert len(keys) == 2
        by_period = {k.rsplit(":", 1)[1]: k for k in keys}
        # Kong's layout: ratelimit:<route>:<service>:<identifier>:<window start ms>:<period>
        prefix = f"ratelimit:00000000-0000-0000-0000-000000000000:{service_id}:127.0.0.1:"
        assert by_period["minute"].startswith(prefix)
        # Kong counts rejected requests too with the redis policy
        assert int(shared_redis.get(by_period["minute"]) or 0) == 5
        assert 0 < shared_redis.ttl(by_period["minute"]) <= 60
        assert 60 < shared_redis.ttl(by_period["hour"]) <= 3600
    finally:
        for k in shared_redis.keys(f"ratelimit:*:{service_id}:*"):
            shared_redis.delete(k)


def test_redis_record_form_and_database(rl_gateway: MakeGW, rl_upstream: Upstream,
                                        shared_redis: redis.Redis) -> None:
    d = doc(rl_upstream.url, {"minute": 2, "policy": "redis",
                              "redis": {"host": "127.0.0.1", "port": 6379, "database": 7}})
    gw = rl_gateway(d)
    service_id = gw.config.entities["plugins"][0]["service"]["id"]
    db7 = redis.Redis(port=6379, db=7)
    try:
        fresh_window()
        assert [get(gw.port).status for _ in range(3)] == [200, 200, 429]
        assert len(db7.keys(f"ratelimit:*:{service_id}:*")) == 1
        assert shared_redis.keys(f"ratelimit:*:{service_id}:*") == []
    finally:
        for k in db7.keys(f"ratelimit:*:{service_id}:*"):
            db7.delete(k)
        db7.close()


def test_redis_sync_rate_batches(rl_gateway: MakeGW, rl_upstream: Upstream,
                                 shared_redis: redis.Redis) -> None:
    d = doc(rl_upstream.url, {"minute": 3, "policy": "redis", "sync_rate": 0.1,
                              "redis_host": "127.0.0.1"})
    gw = rl_gateway(d)
    service_id = gw.config.entities["plugins"][0]["service"]["id"]
    try:
        fresh_window()
        assert [get(gw.port).status for _ in range(4)] == [200, 200, 200, 429]
        key = wait_until(lambda: shared_redis.keys(f"ratelimit:*:{service_id}:*"), 3,
                         what="the flushed counter")[0]
        wait_until(lambda: int(shared_redis.get(key) or 0) == 3, 3, what="3 flushed")
    finally:
        for k in shared_redis.keys(f"ratelimit:*:{service_id}:*"):
            shared_redis.delete(k)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    if shutil.which("redis-server") is None:
        _missing("redis-server not on PATH")
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        p = redis_server(tmp_path, port)
        procs.append(p)
        wait_until(lambda: _redis_up(port), 10, what="redis-server")
        return p

    start.port = port  # type: ignore[attr-defined]
    yield start
    kill_all(procs)


def test_redis_outage_falls_back_to_local_and_recovers(
        rl_gateway: MakeGW, rl_upstream: Upstream, own_redis: Callable[[], subprocess.Popen[bytes]],
        caplog: pytest.LogCaptureFixture) -> None:
    port = own_redis.port  # type: ignore[attr-defined]
    proc = own_redis()
    d = doc(rl_upstream.url, {"minute": 5, "policy": "redis", "redis_host": "127.0.0.1",
                              "redis_port": port, "redis_timeout": 500})
    gw = rl_gateway(d)
    service_id = gw.config.entities["plugins"][0]["service"]["id"]
    client = redis.Redis(port=port)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    fresh_window(0.1)
    if time.time() % 60 > 40:  # keep the whole test inside one minute window
        time.sleep(62 - time.time() % 60)
    assert [get(gw.port).status for _ in range(2)] == [200, 200]
    assert len(client.keys(f"ratelimit:*:{service_id}:*")) == 1

    proc.kill()
    proc.wait(5)
    # Redis is gone: still limited, now by the node-local counters (5 per minute)
    statuses = [get(gw.port).status for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    failures = [r for r in caplog.records if "failed to get usage" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in caplog.records]

    own_redis()  # same port, empty
    time.sleep(1.1)  # the plugin retries Redis at most once a second
    statuses = [get(gw.port).status for _ in range(6)]
    # back on Redis: a fresh (empty) counter there allows 5 more
    assert statuses == [200] * 5 + [429]
    key = client.keys(f"ratelimit:*:{service_id}:*")[0]
    assert int(client.get(key) or 0) == 6
    assert any("is back" in r.getMessage() for r in caplog.records)
    client.close()


def test_redis_unreachable_not_fault_tolerant_is_500(rl_gateway: MakeGW,
                                                      rl_upstream: Upstream) -> None:
    d = doc(rl_upstream.url, {"minute": 5, "policy": "redis", "redis_host": "127.0.0.1",
                              "redis_port": free_port(), "fault_tolerant": False})
    gw = rl_gateway(d)
    r = get(gw.port)
    assert r.status == 500
    assert '"message":"An unexpected error occurred"' in r.text


def test_redis_host_resolved_through_the_hosts_file(rl_gateway: MakeGW, rl_upstream: Upstream,
                                                     shared_redis: redis.Redis,
                                                     tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 redis\n")
    d = doc(rl_upstream.url, {"minute": 1, "policy": "redis", "redis_host": "redis",
                              "fault_tolerant": False})
    gw = rl_gateway(d, dns_hostsfile=str(hosts))
    service_id = gw.config.entities["plugins"][0]["service"]["id"]
    try:
        fresh_window()
        assert [get(gw.port).status for _ in range(2)] == [200, 429]
    finally:
        for k in shared_redis.keys(f"ratelimit:*:{service_id}:*"):
            shared_redis.delete(k)


def test_cluster_policy_uses_the_node_database(rl_gateway: MakeGW, rl_upstream: Upstream,
                                               tmp_path: Path) -> None:
    gw = rl_gateway(doc(rl_upstream.url, {"minute": 2, "hour": 5, "policy": "cluster"}),
                    prefix=str(tmp_path / "p"))
    fresh_window()
    assert [get(gw.port).status for _ in range(3)] == [200, 200, 429]
    db = sqlite3.connect(tmp_path / "p" / "tollway.db")
    rows = db.execute("SELECT identifier, period, value FROM ratelimiting_metrics "
                      "ORDER BY period").fetchall()
    assert rows == [("127.0.0.1", "hour", 2), ("127.0.0.1", "minute", 2)]


def test_cluster_refused_without_a_database(rl_upstream: Upstream, tmp_path: Path) -> None:
    from dataplane_helpers import Gateway as GW
    with pytest.raises(ValueError, match="expected one of: local, redis"):
        GW(doc(rl_upstream.url, {"minute": 2, "policy": "cluster"}),
           {"database": "off", "prefix": str(tmp_path)})


# Two windows: the unrolled access (`_access_pair`), which holds the node's lock itself.
@pytest.mark.parametrize("windows", [{}, {"hour": 1000}], ids=["minute", "minute+hour"])
def test_local_policy_is_exact_across_two_workers(tmp_path: Path,
                                                  windows: dict[str, int]) -> None:
    up = NodeUpstream("u")
    limit, extra = 40, 20
    config = {"_format_version": "3.0", "services": [{
        "name": "s", "url": up.url, "routes": [{"name": "r", "paths": ["/"]}],
        "plugins": [{"name": "rate-limiting",
                     "config": {"minute": limit, "policy": "local", **windows}}],
    }]}
    node = Node(tmp_path / "node", config=config, workers=2,
                env={"TOLLWAY_DATABASE": "off"})
    try:
        node.start()
        assert len(node.worker_pids()) == 2
        fresh_window(0.1)
        if time.time() % 60 > 45:
            time.sleep(62 - time.time() % 60)

        def one(_: int) -> int:
            with httpx.Client(timeout=10) as c:  # a new connection each: either worker
                return c.get(node.proxy_url + "/").status_code

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(one, range(limit + extra)))
        assert statuses.count(200) == limit
        assert statuses.count(429) == extra
        assert (node.prefix / "shm" / "rate-limiting.bin").exists()
    finally:
        node.stop()
        up.stop()
