"""Process life cycle: SIGTERM drains, a crashed worker is restarted."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from node_support import SLOW_SECONDS, Node, Upstream, simple_config, wait_until


def connect_refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            # accepted by a listener that may be closing: see whether it serves at all
            s.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            s.settimeout(1.0)
            return s.recv(1) == b""
    except ConnectionRefusedError:
        return True
    except (ConnectionResetError, TimeoutError):
        return False


def test_sigterm_drains_in_flight_request_then_exits_0(node_factory: Callable[..., Node],
                                                       up1: Upstream) -> None:
    node = node_factory(config=simple_config(up1.url))
    up1.slow_started.clear()
    result: dict[str, Any] = {}

    def slow_request() -> None:
        try:
            r = httpx.get(node.proxy_url + "/a/slow", timeout=10.0)
            result["status"] = r.status_code
            result["body"] = r.json()
            result["connection"] = r.headers.get("connection")
        except Exception as exc:  # reported by the assertions below
            result["error"] = repr(exc)
        result["done_at"] = time.monotonic()

    t = threading.Thread(target=slow_request, daemon=True)
    t.start()
    assert up1.slow_started.wait(5), "the slow request never reached the upstream"
    sigterm_at = time.monotonic()
    node.terminate()

    # stop accepting: while the slow request is still in flight, new connections are refused
    wait_until(lambda: connect_refused(node.proxy_port), SLOW_SECONDS - 0.3, interval=0.05,
               what="the proxy listener to stop accepting during the drain")
    assert "done_at" not in result, "the in-flight request ended before the listener closed"

    t.join(10)
    assert result.get("status") == 200, result
    assert result["body"]["path"] == "/slow"
    assert result["connection"] == "close"

    assert node.proc is not None
    rc = node.proc.wait(10)
    exited_after = time.monotonic() - sigterm_at
    assert rc == 0, node.stderr()
    assert exited_after < 5.0, f"node took {exited_after:.1f} s to exit (grace 5 s)"
    # the node has not been waiting for the grace period: it exits once drained
    assert exited_after < SLOW_SECONDS + 2.0, f"exit took {exited_after:.1f} s"

    for port in (node.proxy_port, node.admin_port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
        except ConnectionRefusedError:
            continue
        raise AssertionError(f"port {port} still accepts connections after exit")
    assert "Traceback" not in node.stderr(), node.stderr()


def test_sigterm_on_idle_node_exits_0_promptly(fresh_node: Node) -> None:
    # an idle keep-alive client must not hold the drain until the grace period
    with httpx.Client(base_url=fresh_node.proxy_url, timeout=5) as c:
        assert c.get("/a").status_code == 200
        pids = fresh_node.worker_pids()
        t0 = time.monotonic()
        fresh_node.terminate()
        assert fresh_node.proc is not None
        rc = fresh_node.proc.wait(10)
    assert rc == 0, fresh_node.stderr()
    assert time.monotonic() - t0 < 3.0
    for pid in pids:  # no orphan worker keeps serving
        wait_until(lambda pid=pid: not _alive(pid), 3, what=f"worker {pid} to exit")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not serving; it is the supervisor's to reap
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_crashed_worker_is_restarted_with_current_config(fresh_node: Node,
                                                         up2: Upstream) -> None:
    node = fresh_node
    # a config posted after start: the replacement worker must serve this one, not --config
    doc = simple_config(up2.url, "/after", "after")
    assert node.post_config(doc).status_code == 201
    expected_hash = node.status()["configuration_hash"]
    before = node.worker_pids()
    assert len(before) == 2
    victim = before[0]
    os.kill(victim, signal.SIGKILL)

    def replaced() -> list[dict[str, Any]] | None:
        workers: list[dict[str, Any]] = node.status()["workers"]
        pids = {w["pid"] for w in workers}
        live = [w for w in workers if w["alive"]]
        if victim in pids or len(live) != 2 or not (pids - set(before)):
            return None
        return workers

    workers = wait_until(replaced, 8, what="a new live worker replacing the killed one")
    new_pid = next(w["pid"] for w in workers if w["pid"] not in before)
    assert _alive(new_pid)

    def reports_hash() -> bool:
        return all(w["configuration_hash"] == expected_hash for w in node.status()["workers"])

    wait_until(reports_hash, 5, what="every worker to report the current configuration hash")
    for _ in range(10):
        r = node.get("/after")
        assert r.status_code == 200, r.text
        assert r.json()["upstream"] == "up2"
        assert node.get("/a").status_code == 404
    assert node.admin("GET", "/").json()["pids"]["workers"].count(new_pid) == 1
    # the node still takes config changes after the restart
    assert node.post_config(simple_config(up2.url, "/again", "again")).status_code == 201
    for r in node.get_many("/again", 6):
        assert r.status_code == 200


def test_grace_period_bounds_the_drain(node_factory: Callable[..., Node],
                                       up1: Upstream) -> None:
    # a request slower than graceful_timeout does not keep the node alive past it
    node = node_factory(config=simple_config(up1.url), env={"TOLLWAY_GRACEFUL_TIMEOUT": "1"})
    up1.slow_started.clear()
    t = threading.Thread(target=lambda: _ignore(lambda: httpx.get(
        node.proxy_url + "/a/slow-beyond-grace", timeout=5.0)), daemon=True)
    t.start()
    # a longer upstream wait than SLOW_SECONDS is not needed: 1 s grace < 1.5 s answer
    assert up1.slow_started.wait(5)
    t0 = time.monotonic()
    node.terminate()
    assert node.proc is not None
    rc = node.proc.wait(10)
    elapsed = time.monotonic() - t0
    assert rc == 0, node.stderr()
    assert elapsed < 1.0 + 1.5, f"exit took {elapsed:.1f} s with a 1 s grace period"
    t.join(5)


def _ignore(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception:
        pass


def test_workers_exit_when_the_supervisor_is_killed(fresh_node: Node) -> None:
    pids = fresh_node.worker_pids()
    assert fresh_node.proc is not None
    fresh_node.proc.kill()
    fresh_node.proc.wait(5)
    for pid in pids:  # no orphan keeps serving a stale config
        wait_until(lambda pid=pid: not _alive(pid), 5, what=f"orphan worker {pid} to exit")
    wait_until(lambda: connect_refused(fresh_node.proxy_port), 2,
               what="the proxy port to close")


def test_status_ready(fresh_node: Node) -> None:
    r = fresh_node.admin("GET", "/status/ready")
    assert r.status_code == 200
    assert r.json() == {"message": "ready"}
