"""Micro-benchmark of ``Router.match`` (not a test): µs per match.

    .venv/bin/python bench/router_micro.py

Times the last of N prefix routes (``/route-00000`` ...) with the match cache
on (repeated request) and off (``cache_size=0``: full normalise + index lookup +
result construction every call), plus a 10,000-route config mixed with regex
and wildcard-host routes that have to be scanned.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tollway.dataplane.router import Router, build_router

SERVICE = {"id": "00000000-0000-4000-8000-00000000aaaa", "path": None, "enabled": True}


def _route(i: int, **kw: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "id": f"00000000-0000-4000-8000-{i:012x}",
        "name": f"route-{i:05d}",
        "protocols": ["http", "https"],
        "methods": None,
        "hosts": None,
        "paths": [f"/route-{i:05d}"],
        "headers": None,
        "snis": None,
        "regex_priority": 0,
        "strip_path": True,
        "service": {"id": SERVICE["id"]},
    }
    r.update(kw)
    return r


def _prefix_routes(n: int) -> list[dict[str, Any]]:
    return [_route(i) for i in range(n)]


def _mixed_routes(n: int) -> list[dict[str, Any]]:
    routes = _prefix_routes(n - 100)
    routes += [_route(n + i, paths=[rf"~/re-{i}/\d+$"]) for i in range(50)]
    routes += [_route(n + 50 + i, paths=None, hosts=[f"*.w{i}.test"]) for i in range(50)]
    return routes


def _time(router: Router, path: str, number: int) -> float:
    def call() -> None:
        router.match("GET", "example.com:8000", path, None)

    if router.match("GET", "example.com:8000", path, None) is None:
        raise SystemExit(f"benchmark request {path} did not match")
    best = min(timeit.repeat(call, number=number, repeat=5))
    return best / number * 1e6


def main() -> None:
    number = 100_000
    print(f"{'scenario':<44} {'cached':>10} {'uncached':>10}")
    scenarios = [
        ("1 prefix route", _prefix_routes(1), "/route-00000/users/42"),
        ("10,000 prefix routes, last one", _prefix_routes(10_000), "/route-09999/users/42"),
        ("10,000 routes incl. 50 regex + 50 wildcard", _mixed_routes(10_000),
         "/route-09899/users/42"),
    ]
    for label, routes, path in scenarios:
        cached = _time(build_router(routes, [SERVICE]), path, number)
        uncached = _time(build_router(routes, [SERVICE], cache_size=0), path, number)
        print(f"{label:<44} {cached:>8.2f}µs {uncached:>8.2f}µs")


if __name__ == "__main__":
    main()
