"""Issue #4 part 6 (balancing half): zero failed requests across 10 config swaps of a
balanced upstream and one SIGTERM drain, under steady load, on a real node."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from balancing_support import Target, document
from dataplane_helpers import LoopThread
from node_support import Node

CLIENTS = 6
SWAPS = 10


def test_swaps_and_drain_under_load_lose_no_request(target_loop: LoopThread,
                                                     tmp_path: Path) -> None:
    ts = [Target(target_loop, n) for n in ("a", "b", "c", "d")]

    def doc(i: int) -> dict[str, object]:
        weights = [100, 100, 100, 100] if i % 2 == 0 else [10, 40, 40, 10]
        return document({"name": "zd.up", "healthchecks": {
            "active": {"healthy": {"interval": 0.5}, "unhealthy": {"interval": 0.5}},
            "passive": {"unhealthy": {"tcp_failures": 3}}},
            "targets": [{"target": t.addr, "weight": w} for t, w in zip(ts, weights,
                                                                         strict=True)]})

    node = Node(tmp_path / "node", config=doc(0), workers=2).start()
    stop = threading.Event()
    draining = threading.Event()
    failures: list[str] = []
    ok = [0]
    lock = threading.Lock()

    def client(i: int) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        with httpx.Client(base_url=node.proxy_url, timeout=10.0, limits=limits) as c:
            while not stop.is_set():
                try:
                    r = c.get(f"/z/{i}")
                except httpx.ConnectError:
                    if draining.is_set():
                        return  # the listener is closed: the node no longer takes requests
                    with lock:
                        failures.append("connect error before the drain")
                    continue
                except httpx.HTTPError as exc:
                    with lock:
                        failures.append(f"{exc!r} (draining: {draining.is_set()})")
                    continue
                with lock:
                    if r.status_code == 200:
                        ok[0] += 1
                    else:
                        failures.append(f"{r.status_code} {r.text[:100]}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        for i in range(1, SWAPS + 1):
            r = node.post_config(doc(i))
            assert r.status_code == 201, r.text
        draining.set()
        assert node.stop() == 0
    finally:
        stop.set()
        for t in threads:
            t.join(15)
        node.stop()
    swap_failures = [f for f in failures if "draining: True" not in f]
    assert not swap_failures, f"{len(swap_failures)} of {ok[0]}: {swap_failures[:5]}"
    assert ok[0] >= 200
    assert all(t.hits > 0 for t in ts)
    # The drain leaves a busy keep-alive client time to send its next request (answered
    # with `Connection: close`) instead of closing between two requests: nothing is lost.
    assert not failures, f"{len(failures)} lost during the drain: {failures[:5]}"
