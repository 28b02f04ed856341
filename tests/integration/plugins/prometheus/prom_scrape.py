"""Reading a /metrics text in the prometheus tests (through prometheus_client's parser)."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, frozenset[tuple[str, str]]]


def parse(text: str) -> dict[Sample, float]:
    out: dict[Sample, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"duplicate sample {key}"
            out[key] = s.value
    return out


def value(samples: dict[Sample, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: dict[Sample, float], name: str, **labels: str) -> float:
    """Sum of every sample of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def check_histograms(samples: dict[Sample, float], name: str) -> int:
    """Every series of histogram `name`: buckets non-decreasing in `le`, +Inf == _count,
    a _sum present. Returns the number of series checked."""
    buckets: dict[frozenset[tuple[str, str]], list[tuple[float, float]]] = defaultdict(list)
    for (n, ls), v in samples.items():
        if n == f"{name}_bucket":
            le = dict(ls)["le"]
            rest = frozenset((k, x) for k, x in ls if k != "le")
            buckets[rest].append((math.inf if le == "+Inf" else float(le), v))
    for labels, pairs in buckets.items():
        pairs.sort()
        counts = [c for _, c in pairs]
        assert counts == sorted(counts), f"{name}{dict(labels)} buckets not cumulative"
        assert pairs[-1][0] == math.inf
        assert samples[(f"{name}_count", labels)] == counts[-1]
        assert (f"{name}_sum", labels) in samples
    return len(buckets)


def series_labels(samples: dict[Sample, float], name: str) -> list[dict[str, Any]]:
    return [dict(ls) for (n, ls) in samples if n == name]
