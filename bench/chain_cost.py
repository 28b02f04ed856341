"""What each plugin of the seed chain costs per request, in one process (issue #3).

A tollway worker (the real `Worker`, uvloop, real loopback sockets), an upstream that answers
every request with a fixed 200 and 50 keep-alive clients run on one event loop. For each
plugin set it prints the process CPU time per proxied request (client and upstream
included, so compare the rows, not the absolute values):

    .venv/bin/python bench/chain_cost.py                      # none, each plugin, all
    .venv/bin/python bench/chain_cost.py --sets none,all -n 4000

CPU time on a shared 2-core VM moves by ±20 % between runs; instruction counts do not. For
a stable figure run one set twice under callgrind with different request counts and divide
the difference (what docs/performance.md quotes):

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python bench/chain_cost.py --sweep 5 --sets all -n 3000   # then -n 6000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _chain
from tollway import settings as settings_mod
from tollway.config.loader import load_text
from tollway.dataplane.server import Worker
from tollway.dataplane.upstream import pool
from tollway.plugins import registry

CHAIN = ("jwt", "rate-limiting", "correlation-id", "prometheus", "cors")
BODY = b'{"ok":true,"n":12345}'
RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Thu, 26 Nov 2026 14:00:00 GMT\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: keep-alive\r\n\r\n%s" % (len(BODY), BODY))
CLIENTS = 50


class Upstream(asyncio.Protocol):
    """Answers each request head it sees (GETs only: no bodies)."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(RESPONSE * data.count(b"\r\n\r\n"))


class Client(asyncio.Protocol):
    """Sends the next request when the previous response is complete."""

    def __init__(self, request: bytes, left: list[int], done: asyncio.Future[None]) -> None:
        self.request, self.left, self.done, self.buf = request, left, done, b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head = self.buf[:end].lower()
            size = int(head.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            if len(self.buf) < end + 4 + size:
                return
            if not head.startswith(b"http/1.1 200"):
                self.done.set_exception(RuntimeError(head.decode(errors="replace")))
                return
            self.buf = self.buf[end + 4 + size:]
            self.left[0] -= 1
            if self.left[0] <= 0:
                if not self.done.done():
                    self.done.set_result(None)
                return
            self.transport.write(self.request)


def config_yaml(upstream_port: int, plugins: set[str], policy: str = "local") -> str:
    doc = yaml.safe_load(_chain.tollway_chain_yaml(upstream_port, policy))
    service = doc["services"][0]
    service["plugins"] = [p for p in service["plugins"] if p["name"] in plugins]
    doc["plugins"] = [p for p in doc["plugins"] if p["name"] in plugins]
    return str(yaml.safe_dump(doc))


async def measure(plugins: set[str], n: int, prefix: Path, policy: str = "local") -> float:
    """Process CPU seconds per request for `n` requests through a route with `plugins`."""
    loop = asyncio.get_running_loop()
    upstream = await loop.create_server(Upstream, "127.0.0.1", 0)
    port = upstream.sockets[0].getsockname()[1]
    settings = settings_mod.load(env={
        # one worker, as the wrk bench runs tollway (rate-limiting then needs no flock)
        "TOLLWAY_WORKERS": "1",
        "TOLLWAY_DATABASE": "off", "TOLLWAY_PROXY_LISTEN": "127.0.0.1:0",
        "TOLLWAY_PROXY_ACCESS_LOG": "off", "TOLLWAY_PREFIX": str(prefix),
        "TOLLWAY_UPSTREAM_KEEPALIVE_MAX_REQUESTS": "0"})  # as bench/_systems.py
    registry.configure(settings.values["plugins"])
    worker = Worker(settings, load_text(config_yaml(port, plugins, policy)), loop)
    await worker.start()
    headers = _chain.request_headers(_chain.make_token())
    request = (b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: wrk\r\nAccept: */*\r\n"
               + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n")

    async def run(count: int) -> None:
        left = [count]
        done: asyncio.Future[None] = loop.create_future()
        for _ in range(CLIENTS):
            await loop.create_connection(lambda: Client(request, left, done),
                                         "127.0.0.1", worker.ports()[0])
        await done

    await run(1000)  # warm-up: connections, caches, the verified token
    started = time.process_time()
    await run(n)
    spent = time.process_time() - started
    upstream.close()
    return spent / n


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default="none," + ",".join(CHAIN) + ",all",
                   help="comma-separated plugin sets: none, all, a plugin name, or a+b")
    p.add_argument("-n", type=int, default=20000, help="requests per set")
    p.add_argument("--sweep", type=float, default=None, metavar="SECONDS",
                   help="the upstream pool's timeout sweep interval (default: the real 10 ms; "
                        "under callgrind pass e.g. 5: valgrind's slowdown makes a 10 ms sweep "
                        "run every few requests and count as their cost)")
    p.add_argument("--policy", default="local", choices=_chain.POLICIES,
                   help="rate-limiting's policy (redis: 127.0.0.1:6379)")
    args = p.parse_args(argv)
    if args.sweep is not None:
        pool.TIMEOUT_RESOLUTION = args.sweep
    with tempfile.TemporaryDirectory(prefix="tollway-chain-cost-") as tmp:
        for i, name in enumerate(s.strip() for s in args.sets.split(",") if s.strip()):
            plugins = (set() if name == "none" else set(CHAIN) if name == "all"
                       else set(name.split("+")))
            unknown = plugins - set(CHAIN)
            if unknown:
                sys.exit(f"chain_cost: not in the seed chain: {', '.join(sorted(unknown))}")
            prefix = Path(tmp) / str(i)
            os.makedirs(prefix)
            per_request = uvloop.run(measure(plugins, args.n, prefix, args.policy))
            print(f"{name:32s} {per_request * 1e6:7.1f} us CPU per request", flush=True)


if __name__ == "__main__":
    main()
