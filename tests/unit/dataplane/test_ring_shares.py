"""The consistent-hashing ring shares the hash space out by weight (issue #4 part 1).

The integration test sends 10,000 keys through real sockets; this one measures the ring
itself, so it needs no sampling: a target's share is the length of the arcs its points own.
"""

from __future__ import annotations

from typing import Any

import pytest

from tollway.dataplane.upstream.balancer import Balancer

SPACE = 1 << 32


def arc_shares(b: Balancer) -> dict[str, float]:
    # a key hashing to h goes to the first point above h (wrapping), so point i owns the
    # arc (ring[i-1], ring[i]] and point 0 also owns the wrap from the last point
    ring, peers = b.ring, b.ring_peers
    shares: dict[str, float] = {}
    prev = ring[-1] - SPACE
    for h, p in zip(ring, peers, strict=True):
        shares[p.address] = shares.get(p.address, 0) + (h - prev) / SPACE
        prev = h
    return shares


def ring(targets: list[tuple[str, int]], **up: Any) -> Balancer:
    upstream = {"name": "u", "algorithm": "consistent-hashing", **up}
    return Balancer(upstream, [{"target": t, "weight": w} for t, w in targets],
                    "u", None, {})


@pytest.mark.parametrize("targets", [
    [("10.0.0.1:80", 50), ("10.0.0.2:80", 30), ("10.0.0.3:80", 20)],
    [("127.0.0.1:41001", 50), ("127.0.0.1:41002", 30), ("127.0.0.1:41003", 20)],
    [("10.1.0.1:8000", 1), ("10.1.0.2:8000", 1), ("10.1.0.3:8000", 1), ("10.1.0.4:8000", 7)],
])
def test_arc_shares_follow_weights(targets: list[tuple[str, int]]) -> None:
    b = ring(targets)
    total = sum(w for _, w in targets)
    shares = arc_shares(b)
    assert abs(sum(shares.values()) - 1) < 1e-9
    for t, w in targets:
        # ten points a slot keep each share within 1.5 % (relative) of its weight; the
        # integration test's ±5 % leaves the rest to sampling 10,000 keys
        assert abs(shares[t] - w / total) <= 0.015 * w / total, (t, shares[t], w / total)


def test_zero_weight_target_owns_no_arc() -> None:
    b = ring([("10.0.0.1:80", 100), ("10.0.0.2:80", 0)])
    assert set(arc_shares(b)) == {"10.0.0.1:80"}


def test_ring_is_the_same_for_the_same_targets() -> None:
    # stickiness across config reloads and nodes: the ring depends on the targets alone
    a = ring([("10.0.0.1:80", 50), ("10.0.0.2:80", 50)])
    b = ring([("10.0.0.2:80", 50), ("10.0.0.1:80", 50)])
    assert a.ring == b.ring
    assert [p.address for p in a.ring_peers] == [p.address for p in b.ring_peers]
