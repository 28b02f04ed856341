"""The prometheus plugin's log records, folded into the worker's metrics in bulk.

The log phase runs for every request; updating a counter, two histograms and the bandwidth
counters there cost as much as the rest of the plugin chain's log work together (~235
bytecodes a request). Instead a request appends one tuple to its route's cell, and the cell's
records are folded into the metrics later with C-level passes (`zip`, `map`, `Counter`,
`sum`): at most `FOLD_EVERY` records or `FOLD_AFTER` seconds later, and always before the
registry is read (`Registry.export` runs `before_export`), so a scrape sees every request
logged before it, as it did when each request updated the metrics itself.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections import Counter
from itertools import compress, repeat
from operator import is_not
from typing import Any

from tollway import metrics

FOLD_EVERY = 512  # records per cell before it is folded at once
FOLD_AFTER = 1.0  # seconds a record waits at most (bounds memory on quiet routes too)
WORKER_KEY = "prometheus:batch"
# Request methods are client-chosen tokens: anything else is one `other` series.
METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH",
                                   "OPTIONS", "CONNECT", "TRACE")}
STATUSES = {code: str(code) for code in range(100, 600)}
# No response at all: the client went away first (nginx logs that as 499).
STATUSES[0] = "499"

# A cell, one per (plugin instance, route): [labels, request duration series, upstream
# duration series (made on first use), the plugin, pending records]. A record:
# (method, status, consumer label, duration, upstream duration or None, request body bytes,
# response body bytes, req.ctx's rate_limit_exceeded: set when rate-limiting answered 429).
LABELS, REQ_SERIES, UP_SERIES, PLUGIN, PENDING = range(5)
Cell = list[Any]


class Batch:
    """The cells of one worker with records not folded yet."""

    def __init__(self, registry: metrics.Registry) -> None:
        self.dirty: list[Cell] = []
        self.timer: asyncio.TimerHandle | None = None
        registry.before_export.append(self.fold)

    def mark(self, cell: Cell) -> None:
        """`cell` got its first pending record."""
        self.dirty.append(cell)
        if self.timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a test calling log directly): fold when read
                return
            self.timer = loop.call_later(FOLD_AFTER, self.fold)

    def fold(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        dirty, self.dirty = self.dirty, []
        for cell in dirty:
            fold_cell(cell)


def for_worker(worker: dict[str, Any], registry: metrics.Registry) -> Batch:
    batch = worker.get(WORKER_KEY)
    if batch is None:
        batch = worker[WORKER_KEY] = Batch(registry)
    assert isinstance(batch, Batch)
    return batch


def fold_cell(cell: Cell) -> None:
    records = cell[PENDING]
    if not records:
        return
    cell[PENDING] = []
    plugin = cell[PLUGIN]
    labels = cell[LABELS]
    sr = labels[0]
    methods, statuses, consumers, durations, up_durations, ins, outs, limited = zip(
        *records, strict=True)
    requests = plugin.requests
    if requests is not None:
        # count the distinct (method, status, consumer) first: the label values are looked
        # up once per distinct key, not once per record
        for (method, status, consumer), n in Counter(
                zip(methods, statuses, consumers, strict=True)).items():
            requests.inc((sr[0], sr[1], METHODS.get(method, "other"),
                          STATUSES.get(status) or str(status), consumer), n)
    req_series = cell[REQ_SERIES]
    if req_series is not None:
        _observe(req_series, plugin.req_buckets, durations)
        ups = list(compress(up_durations, map(is_not, up_durations, repeat(None))))
        if ups and plugin.upstream_duration is not None:
            up_series = cell[UP_SERIES]
            if up_series is None:
                up_series = cell[UP_SERIES] = plugin.upstream_duration.series(sr)
            _observe(up_series, plugin.up_buckets, ups)
    bandwidth = plugin.bandwidth
    if bandwidth is not None:
        bandwidth.inc(labels[1], sum(ins))
        bandwidth.inc(labels[2], sum(outs))
    rejected = sum(map(bool, limited))
    if rejected:
        plugin.rate_limited.inc(sr, rejected)


def _observe(series: list[float], buckets: tuple[float, ...], values: Any) -> None:
    """Histogram.observe for many values: one bucket count per value, their sum. The values
    are sorted once (C) and each bucket's share found by bisecting them: a few bisects per
    fold instead of a bisect and a count per value."""
    ordered = sorted(values)
    total = len(ordered)
    lo = 0
    for i, bound in enumerate(buckets):
        # bucket i holds buckets[i-1] < v <= buckets[i], as bisect_left(buckets, v) == i
        hi = bisect_right(ordered, bound, lo)
        if hi > lo:
            series[i] += hi - lo
            lo = hi
            if lo == total:
                break
    if lo < total:
        series[len(buckets)] += total - lo  # +Inf
    series[-1] += sum(ordered)
