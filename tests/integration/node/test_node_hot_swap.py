"""Config hot swap under load: zero failed requests while POST /config alternates configs."""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import yaml
from node_support import Node, Upstream, config_doc, service

from tollway.config.declarative import validate

CLIENTS = 6
SWAPS = 20


def test_hot_swap_under_load_fails_no_request(node: Node, up1: Upstream,
                                              up2: Upstream) -> None:
    # Both configs route /hot; they differ in service, upstream and upstream path, so every
    # answer tells which config served it.
    config_a = config_doc(service("svc-a", up1.url + "/from-a", {"hot-a": ["/hot"]}))
    config_b = config_doc(service("svc-b", up2.url + "/from-b", {"hot-b": ["/hot"]}),
                          service("svc-extra", up1.url, {"extra": ["/extra"]}))
    assert node.post_config(config_a).status_code == 201

    stop = threading.Event()
    failures: list[str] = []
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def client(i: int) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        with httpx.Client(base_url=node.proxy_url, timeout=10.0, limits=limits) as c:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    r = c.get(f"/hot/{i}/{n}")
                except httpx.HTTPError as exc:
                    with lock:
                        failures.append(f"client {i} request {n}: {exc!r}")
                    continue
                with lock:
                    if r.status_code != 200:
                        failures.append(f"client {i} request {n}: {r.status_code} {r.text}")
                    else:
                        body = r.json()
                        seen[f"{body['upstream']} {body['path'].split('/')[1]}"] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        for i in range(SWAPS):
            doc, expected = (config_b, "up2") if i % 2 == 0 else (config_a, "up1")
            r = node.post_config(doc)
            assert r.status_code == 201, r.text
            # the next request (fresh connection, any worker) sees the config just posted
            check = node.get("/hot/check")
            assert check.status_code == 200, check.text
            assert check.json()["upstream"] == expected
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert not failures, f"{len(failures)} failed request(s), first: {failures[:5]}"
    # both configs really served the load (each answer matches one config, never a mix)
    assert set(seen) == {"up1 from-a", "up2 from-b"}, seen
    assert sum(seen.values()) >= 100, seen


def test_concurrent_posts_leave_one_consistent_config(node: Node, up1: Upstream) -> None:
    docs = [config_doc(service(f"svc-{i}", up1.url + f"/v{i}", {f"r-{i}": ["/c"]}))
            for i in range(6)]
    results: list[int] = []

    def post(doc: dict[str, object]) -> None:
        results.append(node.post_config(doc).status_code)

    threads = [threading.Thread(target=post, args=(d,)) for d in docs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [201] * len(docs)
    status = node.status()
    final = status["configuration_hash"]
    assert final in {validate(d).hash for d in docs}
    winner = next(i for i, d in enumerate(docs) if validate(d).hash == final)
    # every worker serves the config the admin API reports, nothing else
    for _ in range(8):
        r = node.get("/c")
        assert r.status_code == 200
        assert r.json()["path"] == f"/v{winner}"
    assert validate(yaml.safe_load(node.admin("GET", "/config").json()["config"])).hash == final
