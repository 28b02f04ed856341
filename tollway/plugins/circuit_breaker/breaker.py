"""The circuit breaker's state machine, on a record stored in the node table.

closed --(failure rate over the window >= threshold, with at least minimum_calls)--> open
open --(cooldown elapsed, on the next request)--> half-open
half-open --(half_open_probes successful probes)--> closed
half-open --(one failed probe)--> open

Every function takes `now` (wall-clock seconds: records are shared between processes and
their times are shown in the Admin API), so the tests drive time without sleeping.

The rolling window is `BUCKETS` buckets of window/BUCKETS seconds each, keyed by the bucket's
epoch number: a bucket from an older epoch is stale and counts as empty.

A manual override (`forced`) pins the state: forced open rejects everything, forced closed
lets everything through and never trips. Giving a forced-open breaker back to `auto` puts it
half-open, so probes decide (the runbook's "it closes after its half-open probes succeed").
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from tollway.metrics import CIRCUIT_CLOSED, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN

CLOSED, OPEN, HALF_OPEN = CIRCUIT_CLOSED, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN
STATE_NAMES = {CLOSED: "closed", OPEN: "open", HALF_OPEN: "half-open"}
AUTO, FORCED_OPEN, FORCED_CLOSED = 0, 1, 2
MODE_NAMES = {AUTO: "auto", FORCED_OPEN: "open", FORCED_CLOSED: "closed"}

BUCKETS = 10
REASON_SIZE = 120
_HEAD = struct.Struct(f"<BBxxIIIddddQQQddIdI{REASON_SIZE}s")
_BUCKET = struct.Struct("<qII")
SIZE = _HEAD.size + BUCKETS * _BUCKET.size


@dataclass
class Settings:
    """A breaker's config (the plugin's fields)."""
    failure_threshold: float = 50.0   # percent
    minimum_calls: int = 20
    window_size: float = 10.0         # seconds
    cooldown: float = 30.0            # seconds
    half_open_probes: int = 3


@dataclass
class Record:
    state: int = CLOSED
    forced: int = AUTO
    in_flight: int = 0        # half-open probes admitted and not yet finished
    probe_ok: int = 0         # successful probes in this half-open period
    opens: int = 0            # times opened (automatically)
    since: float = 0.0        # when the state last changed
    probe_at: float = 0.0     # when the last probe was admitted
    forced_at: float = 0.0
    updated: float = 0.0
    calls: int = 0            # totals since the breaker was created
    failures: int = 0
    rejected: int = 0
    # the config, echoed so the supervisor can list it without compiling the config
    failure_threshold: float = 0.0
    window_size: float = 0.0
    minimum_calls: int = 0
    cooldown: float = 0.0
    half_open_probes: int = 0
    reason: str = ""
    buckets: list[list[int]] = field(default_factory=lambda: [[0, 0, 0] for _ in range(BUCKETS)])

    def pack(self) -> bytes:
        head = _HEAD.pack(self.state, self.forced, self.in_flight, self.probe_ok, self.opens,
                          self.since, self.probe_at, self.forced_at, self.updated, self.calls,
                          self.failures, self.rejected, self.failure_threshold,
                          self.window_size, self.minimum_calls, self.cooldown,
                          self.half_open_probes,
                          self.reason.encode()[:REASON_SIZE])
        return head + b"".join(_BUCKET.pack(*b) for b in self.buckets)

    @classmethod
    def unpack(cls, data: bytes) -> Record:
        h = _HEAD.unpack_from(data, 0)
        buckets = [list(_BUCKET.unpack_from(data, _HEAD.size + i * _BUCKET.size))
                   for i in range(BUCKETS)]
        return cls(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11],
                   h[12], h[13], h[14], h[15], h[16],
                   h[17].rstrip(b"\0").decode(errors="replace"), buckets)

    def configure(self, s: Settings) -> None:
        self.failure_threshold = s.failure_threshold
        self.window_size = s.window_size
        self.minimum_calls = s.minimum_calls
        self.cooldown = s.cooldown
        self.half_open_probes = s.half_open_probes

    def window(self, now: float) -> tuple[int, int]:
        """(calls, failures) in the rolling window ending now."""
        width = self.window_size / BUCKETS
        if width <= 0:
            return 0, 0
        epoch = int(now // width)
        calls = failures = 0
        for e, c, f in self.buckets:
            if epoch - BUCKETS < e <= epoch:
                calls += c
                failures += f
        return calls, failures


def _set(rec: Record, state: int, now: float, reason: str) -> None:
    rec.state = state
    rec.since = now
    rec.in_flight = 0
    rec.probe_ok = 0
    rec.reason = reason
    if state != OPEN:
        rec.buckets = [[0, 0, 0] for _ in range(BUCKETS)]


def admit(rec: Record, s: Settings, now: float) -> tuple[bool, bool, int]:
    """(allowed, is a probe, Retry-After seconds) for a request arriving now."""
    if rec.forced == FORCED_OPEN:
        rec.rejected += 1
        return False, False, max(1, math.ceil(s.cooldown))
    if rec.forced == FORCED_CLOSED or rec.state == CLOSED:
        return True, False, 0
    if rec.state == OPEN:
        left = rec.since + s.cooldown - now
        if left > 0:
            rec.rejected += 1
            return False, False, max(1, math.ceil(left))
        _set(rec, HALF_OPEN, now, "cooldown elapsed: probing")
    # half-open: let `half_open_probes` requests through, one at a time per missing success;
    # a probe that never reported (its worker died) frees its place after a cooldown.
    if rec.in_flight and now - rec.probe_at >= s.cooldown:
        rec.in_flight = 0
    if rec.in_flight + rec.probe_ok < s.half_open_probes:
        rec.in_flight += 1
        rec.probe_at = now
        return True, True, 0
    rec.rejected += 1
    return False, False, max(1, math.ceil(min(s.cooldown, s.window_size)))


def record(rec: Record, s: Settings, now: float, failed: bool, probe: bool) -> str | None:
    """Count a finished call; the new state's name when this call changed it."""
    rec.calls += 1
    rec.failures += failed
    if rec.forced != AUTO:
        return None
    if probe and rec.state == HALF_OPEN:
        rec.in_flight = max(0, rec.in_flight - 1)
        if failed:
            rec.opens += 1
            _set(rec, OPEN, now, "a half-open probe failed")
            return "open"
        rec.probe_ok += 1
        if rec.probe_ok >= s.half_open_probes:
            _set(rec, CLOSED, now, f"{s.half_open_probes} half-open probes succeeded")
            return "closed"
        return None
    if rec.state != CLOSED:
        return None  # a call admitted before the breaker opened: the window is frozen
    width = s.window_size / BUCKETS
    epoch = int(now // width)
    b = rec.buckets[epoch % BUCKETS]
    if b[0] != epoch:
        b[0], b[1], b[2] = epoch, 0, 0
    b[1] += 1
    b[2] += failed
    if not failed:
        return None
    calls, failures = rec.window(now)
    if calls >= s.minimum_calls and failures * 100.0 >= s.failure_threshold * calls:
        rec.opens += 1
        _set(rec, OPEN, now, f"failure rate {failures * 100.0 / calls:.1f}% "
                             f"({failures}/{calls} calls in {s.window_size:g}s) reached "
                             f"{s.failure_threshold:g}%")
        return "open"
    return None


def force(rec: Record, mode: int, now: float) -> None:
    """The Admin API's override: open, closed or back to auto."""
    previous = rec.forced
    rec.forced = mode
    rec.forced_at = now
    if mode == FORCED_OPEN:
        _set(rec, OPEN, now, "forced open by the Admin API")
    elif mode == FORCED_CLOSED:
        _set(rec, CLOSED, now, "forced closed by the Admin API")
    elif previous == FORCED_OPEN:
        _set(rec, HALF_OPEN, now, "given back to auto: probing")
    elif previous == FORCED_CLOSED:
        rec.reason = "given back to auto"


def describe(name: str, rec: Record, now: float) -> dict[str, object]:
    """A breaker as the Admin API lists it."""
    calls, failures = rec.window(now) if rec.state == CLOSED else (0, 0)
    out: dict[str, object] = {
        "service": name,
        "state": STATE_NAMES.get(rec.state, "closed"),
        "mode": MODE_NAMES.get(rec.forced, "auto"),
        "since": rec.since,
        "reason": rec.reason or None,
        "window": {"calls": calls, "failures": failures,
                   "failure_rate": round(failures * 100.0 / calls, 1) if calls else 0.0},
        "totals": {"calls": rec.calls, "failures": rec.failures, "rejected": rec.rejected,
                   "opened": rec.opens},
        "config": {"failure_threshold": rec.failure_threshold,
                   "minimum_calls": rec.minimum_calls, "window_size": rec.window_size,
                   "cooldown": rec.cooldown, "half_open_probes": rec.half_open_probes},
    }
    if rec.forced != AUTO:
        out["forced_at"] = rec.forced_at
    if rec.state == OPEN and rec.forced == AUTO:
        out["retry_at"] = rec.since + rec.cooldown
    if rec.state == HALF_OPEN:
        out["probes"] = {"succeeded": rec.probe_ok, "in_flight": rec.in_flight}
    return out
