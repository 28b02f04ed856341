"""deploy/k8s/canary/tollway/canary.yaml on a real node: the names gateway-stable and
gateway-canary resolve (hosts file) to two loopback addresses where two HTTP servers answer
on port 8000, as the two Kubernetes Services would. `x-canary: true` always reaches the
canary; other requests follow the canary plugin's 10 % split, sticky per client IP; the
rollout shows in GET /status/canary."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from deploy_support import DEPLOY
from node_support import Node

CANARY = DEPLOY / "k8s" / "canary" / "tollway" / "canary.yaml"


def _serve(address: str, name: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"color": name}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((address, 8000), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    work: Path = tmp_path_factory.mktemp("canary-edge")
    a, b = random.randrange(100, 250), random.randrange(0, 256)
    addresses = {"gateway-stable": f"127.{a}.{b}.2", "gateway-canary": f"127.{a}.{b}.3"}
    servers = [_serve(ip, name) for name, ip in addresses.items()]
    hosts = work / "hosts"
    hosts.write_text("".join(f"{ip} {name}\n" for name, ip in addresses.items()))
    node = Node(work / "node", config=CANARY, workers=2,
                env={"TOLLWAY_DATABASE": "off", "TOLLWAY_DNS_HOSTSFILE": str(hosts)}).start()
    try:
        yield node
    finally:
        node.stop()
        for s in servers:
            s.shutdown()
            s.server_close()


def test_the_header_always_reaches_the_canary(edge: Node) -> None:
    for _ in range(10):
        r = edge.get("/anything", headers={"x-canary": "true"})
        assert r.status_code == 200
        assert r.json() == {"color": "gateway-canary"}


def test_other_requests_follow_the_sticky_split(edge: Node) -> None:
    # one client IP: the plugin's hash puts it on one side, and it stays there
    colors = {edge.get(f"/p{i}").json()["color"] for i in range(20)}
    assert len(colors) == 1, colors
    rollouts = httpx.get(edge.admin_url + "/status/canary", timeout=5).json()["data"]
    (rollout,) = rollouts
    assert rollout["weight"] == 10
    assert rollout["status"] in ("holding", "progressing")
