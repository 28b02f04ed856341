"""A worker process: serves the proxy listeners from the config the supervisor sends.

Run as `python -m tollway.node.worker FD` by the supervisor, with the node's settings in its
environment and FD one end of the control channel. SIGTERM drains; so does losing the
supervisor (the channel closes), so no orphan keeps serving a stale config.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import sys

import uvloop

from tollway import metrics
from tollway import settings as settings_mod
from tollway.config.model import Config
from tollway.dataplane.server import ServerState, Worker
from tollway.node import channel
from tollway.node.logs import setup_error_log
from tollway.plugins import registry

log = logging.getLogger("tollway.worker")
GC_GEN0_THRESHOLD = 20_000  # CPython's default is 700 (see tune_gc)


def connection_stats(st: ServerState) -> dict[str, int]:
    return {
        "active": len(st.connections),
        "accepted": st.stats_accepted,
        "handled": st.stats_handled,
        "reading": sum(1 for p in st.connections if p.parsing is not None),
        "writing": st.active_requests(),
        "waiting": sum(1 for p in st.connections if p.idle()),
    }


def export_metrics(st: ServerState) -> dict[str, dict[str, object]]:
    """This worker's samples for a scrape: the plugin-maintained metrics plus the node
    gauges, refreshed now."""
    reg = metrics.for_worker(st.plugin_state)
    metrics.update_node_metrics(reg, connection_stats(st), st.snapshot.hash)
    return reg.export()


def tune_gc() -> None:
    """Requests leave almost no cyclic garbage, but plugins that hold records for a while
    (prometheus folds 512 at a time) push the young generation over CPython's default of
    700 net allocations, and the cyclic collector then ran about once a hundred requests
    (0.7-0.9 % of a seed-chain worker's CPU under perf; none with this). The garbage it
    waits for is bounded by the same number of objects. The older generations keep their
    thresholds."""
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


def received(msg: dict[str, object]) -> Config:
    """The config in a `config` message. Its `hash` is the stored config's: the entities
    carry resolved vault secrets, and the hash must not change with them (nor leak them)."""
    entities = msg["entities"]
    assert isinstance(entities, dict)
    config = Config.from_entities(entities)
    sent = msg.get("hash")
    return Config(entities=config.entities, hash=sent) if isinstance(sent, str) else config


async def run(fd: int) -> int:
    settings = settings_mod.load()
    registry.configure(settings.values["plugins"])
    sock = socket.socket(fileno=fd)
    reader, writer = await channel.open_channel(sock)
    loop = asyncio.get_running_loop()
    first = await channel.receive(reader)
    if first is None or first.get("op") != "config":
        return 1
    worker = Worker(settings, received(first), loop)
    try:
        await worker.start()
    except OSError as exc:
        log.error("cannot listen on proxy_listen %s: %s",
                  ", ".join(map(str, settings.proxy_listen)), exc.strerror or exc)
        return 1
    tune_gc()
    channel.send(writer, {"op": "ready", "pid": os.getpid(), "hash": worker.state.snapshot.hash,
                          "ports": worker.ports()})
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    async def control() -> None:
        while True:
            msg = await channel.receive(reader)
            if msg is None:
                log.warning("supervisor went away; draining")
                stop.set()
                return
            if msg.get("op") == "config":
                try:
                    # the same config again (a restart's replay, a no-op sync): no rebuild
                    if msg.get("hash") is None or msg["hash"] != worker.state.snapshot.hash:
                        worker.state.swap(received(msg))
                    channel.send(writer, {"op": "ack", "id": msg.get("id"), "ok": True,
                                          "hash": worker.state.snapshot.hash})
                except Exception as exc:  # the old snapshot keeps serving
                    log.error("config %s failed to compile: %s", msg.get("id"), exc)
                    channel.send(writer, {"op": "ack", "id": msg.get("id"), "ok": False,
                                          "error": str(exc)})
            elif msg.get("op") == "target_health":
                bal = worker.state.snapshot.balancers.get(str(msg.get("upstream")))
                n = bal.set_target_health(str(msg.get("target")), bool(msg.get("healthy"))) \
                    if bal is not None else 0
                channel.send(writer, {"op": "ack", "id": msg.get("id"), "ok": True,
                                      "matched": n})
            elif msg.get("op") == "metrics":
                channel.send(writer, {"op": "metrics", "id": msg.get("id"),
                                      "metrics": export_metrics(worker.state)})

    async def report() -> None:
        st = worker.state
        while True:
            await asyncio.sleep(1.0)
            stats = {f"connections_{k}": v for k, v in connection_stats(st).items()}
            channel.send(writer, {"op": "stats", "pid": os.getpid(), "hash": st.snapshot.hash,
                                  "total_requests": st.stats_requests, **stats})

    tasks = [loop.create_task(control()), loop.create_task(report())]
    await stop.wait()
    clean = await worker.drain(settings.graceful_timeout)
    for t in tasks:
        t.cancel()
    log.info("worker %d drained %s", os.getpid(), "cleanly" if clean else "(grace expired)")
    return 0


def main() -> None:
    setup_error_log(settings_mod.load())
    sys.exit(uvloop.run(run(int(sys.argv[1]))))


if __name__ == "__main__":
    main()
