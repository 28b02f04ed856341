"""rate-limiting's `cluster` policy on the store's counters, on SQLite and PostgreSQL: exact
across two worker processes, rejected requests not counted, and (PostgreSQL) one limit
shared by two nodes."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from node_support import Node, Upstream

LIMIT, EXTRA = 30, 15


def _config(url: str) -> dict[str, object]:
    return {"_format_version": "3.0", "services": [{
        "name": "s", "url": url, "routes": [{"name": "r", "paths": ["/"]}],
        "plugins": [{"name": "rate-limiting",
                     "config": {"hour": LIMIT, "policy": "cluster"}}],
    }]}


def _burst(urls: list[str], n: int) -> list[int]:
    def one(i: int) -> int:
        with httpx.Client(timeout=10) as c:  # a new connection each: any worker
            return c.get(urls[i % len(urls)] + "/").status_code

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(n)))


def _away_from_hour_edge() -> None:
    if time.time() % 3600 > 3590:
        time.sleep(3601 - time.time() % 3600)


def test_cluster_policy_is_exact_across_workers(
        backend: str, backend_env_vars: dict[str, str], store_upstream: Upstream,
        store_nodes: Callable[..., Node]) -> None:
    env = dict(backend_env_vars)
    if backend == "postgres":
        from tollway.controlplane.store import Store, migrate
        from tollway.settings import load

        s = Store.open(load(env=env))
        migrate.upgrade(s.engine)
        s.close()
    node = store_nodes(config=_config(store_upstream.url), env=env, workers=2)
    _away_from_hour_edge()
    statuses = _burst([node.proxy_url], LIMIT + EXTRA)
    assert statuses.count(200) == LIMIT, statuses
    assert statuses.count(429) == EXTRA
    r = node.get("/")
    assert r.status_code == 429 and r.headers["x-ratelimit-remaining-hour"] == "0"
    if backend == "postgres":
        # a second node on the same database shares the counters: nothing left for it
        other = store_nodes(name="other", env=env, workers=1)
        assert other.get("/").status_code == 429
