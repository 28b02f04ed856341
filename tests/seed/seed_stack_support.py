"""Shared by the seed stack fixture and its tests."""

from __future__ import annotations


def flush_rate_limit_keys() -> None:
    # Counters from an earlier run in the same minute must not turn the first test's 200/401
    # into a 429. Without a reachable Redis the seed config falls back to local counters.
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1)
        keys = list(client.scan_iter("ratelimit:*"))
        if keys:
            client.delete(*keys)
    except Exception:
        pass
