"""The log records folded in bulk (prometheus/batch.py) give exactly the metrics that updating
them request by request gives: counts, buckets, sums, caps, the lazily made upstream series."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tollway import metrics
from tollway.plugins.base import BuildContext
from tollway.plugins.prometheus import batch
from tollway.plugins.prometheus.handler import PrometheusPlugin, register
from tollway.plugins.prometheus.schema import config_schema


class Req:
    def __init__(self, rng: random.Random, now: float) -> None:
        self.match = None
        self.method = rng.choice([b"GET", b"POST", b"PURGE", b"DELETE"])
        self.status = rng.choice([200, 200, 404, 429, 502, 0, 777])
        self.consumer = rng.choice([None, {"id": "c1", "username": "alice"}, {"id": "c2"}])
        self.t_start = now - rng.uniform(0, 3)
        self.t_upstream = self.t_start + 0.0001
        self.t_response = rng.choice([0.0, self.t_upstream + rng.uniform(0, 2)])
        self.req_size = rng.randint(0, 500)
        self.resp_size = rng.randint(0, 5000)
        self._ctx = rng.choice([None, {}, {"rate_limit_exceeded": True}])
        self.loop = self
        self.now = now

    def time(self) -> float:
        return self.now


def reference(reg: metrics.Registry, reqs: list[Req], per_consumer: bool) -> None:
    """What the log phase did before the batch: every metric updated per request."""
    m = register(reg)
    sr = ("", "")
    for r in reqs:
        consumer = ""
        if per_consumer and r.consumer is not None:
            consumer = r.consumer.get("username") or r.consumer["id"]
        method = batch.METHODS.get(r.method, "other")
        status = batch.STATUSES.get(r.status) or str(r.status)
        m["gateway_requests_total"].inc((*sr, method, status, consumer))
        m["gateway_request_duration_seconds"].observe(sr, r.now - r.t_start)
        if r.t_response:
            m["gateway_upstream_duration_seconds"].observe(sr, r.t_response - r.t_upstream)
        m["gateway_bandwidth_bytes_total"].inc((*sr, "ingress"), r.req_size)
        m["gateway_bandwidth_bytes_total"].inc((*sr, "egress"), r.resp_size)
        if r._ctx and r._ctx.get("rate_limit_exceeded"):
            m["gateway_rate_limit_exceeded_total"].inc(sr)


def plugin(worker: dict[str, Any], per_consumer: bool) -> PrometheusPlugin:
    config, errors = config_schema.validate({"per_consumer": per_consumer})
    assert not errors
    return PrometheusPlugin(config, {"id": "p"}, BuildContext(offline=True, worker=worker))


@pytest.mark.parametrize("per_consumer", [False, True])
def test_bulk_fold_equals_per_request_updates(per_consumer: bool) -> None:
    rng = random.Random(3)
    reqs = [Req(rng, 1000.0) for _ in range(2000)]
    worker: dict[str, Any] = {}
    p = plugin(worker, per_consumer)
    reg = metrics.for_worker(worker)
    reg.metrics["gateway_requests_total"].limit = 20  # the cap is applied the same way
    for r in reqs:
        p.log(r)
    expected = metrics.Registry()
    register(expected)
    expected.metrics["gateway_requests_total"].limit = 20
    reference(expected, reqs, per_consumer)
    got, want = reg.export(), expected.export()
    for name in want:
        g = {tuple(k): v for k, v in got[name]["series"]}
        w = {tuple(k): v for k, v in want[name]["series"]}
        assert g.keys() == w.keys(), name
        for k in w:
            assert g[k] == pytest.approx(w[k]), (name, k)


def test_records_wait_until_read_and_at_most_fold_every() -> None:
    worker: dict[str, Any] = {}
    p = plugin(worker, False)
    reg = metrics.for_worker(worker)
    rng = random.Random(1)
    for _ in range(batch.FOLD_EVERY - 1):
        p.log(Req(rng, 10.0))
    counted = reg.metrics["gateway_requests_total"].values
    assert sum(counted.values()) == 0  # pending: nothing read the registry yet
    p.log(Req(rng, 10.0))
    assert sum(counted.values()) == batch.FOLD_EVERY  # the cell was full: folded
    p.log(Req(rng, 10.0))
    reg.export()  # a read (a scrape) folds what is pending first
    assert sum(counted.values()) == batch.FOLD_EVERY + 1


def test_observe_in_bulk_equals_observe_one_by_one() -> None:
    rng = random.Random(11)
    h = metrics.Histogram("h", "h")
    buckets = h.buckets
    # every bound exactly, just above and below it, zero, beyond the last bound, and noise
    values = [0.0, buckets[-1] * 10, *buckets, *(b + 1e-12 for b in buckets),
              *(b - 1e-12 for b in buckets), *(rng.uniform(0, 70) for _ in range(300)),
              *(rng.expovariate(50) for _ in range(300))]
    rng.shuffle(values)
    for v in values:
        h.observe(("one",), v)
    bulk = [0.0] * h.width
    batch._observe(bulk, buckets, values)
    assert bulk[:-1] == h.series(("one",))[:-1]  # counts exactly, +Inf included
    assert bulk[-1] == pytest.approx(h.series(("one",))[-1])
    for few in ([], [buckets[0]], [buckets[-1] + 1]):  # edges of the bisect loop
        one_by_one = metrics.Histogram("g", "g")
        for v in few:
            one_by_one.observe((), v)
        got = [0.0] * one_by_one.width
        batch._observe(got, buckets, few)
        assert got == one_by_one.series(())
