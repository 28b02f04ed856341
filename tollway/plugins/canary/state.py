"""A canary's node-wide record and the pure logic on it (schedule, p95, rollback decision).

The record lives in a node table (`<prefix>/shm/canary.bin`, see
`tollway.plugins.circuit_breaker.table`), so every worker sends the same share of clients to
the canary, the rollback decided by one worker holds for all, and the supervisor lists it.
Times are wall-clock seconds passed in by the caller (tests drive them).

Statistics are kept since the rollout started, per side: requests, errors (5xx, timeouts,
connection errors) and a latency histogram with geometric buckets (x1.25 from 1 ms), whose
p95 is the upper bound of the bucket holding the 95th percentile — within 25 %.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

MAX_STEPS = 16
HIST = 48
BASE_MS, RATIO = 1.0, 1.25
BOUNDS_MS = tuple(BASE_MS * RATIO ** i for i in range(HIST))  # last one: overflow
NAME_SIZE, REASON_SIZE = 64, 200
# head: rolled_back, pad, fingerprint, started_at, rolled_back_at, nsteps, names, reason
_HEAD = struct.Struct(f"<BxxxIQddI{NAME_SIZE}s{NAME_SIZE}s{REASON_SIZE}s")
_STEPS = struct.Struct(f"<{2 * MAX_STEPS}d")
_SIDE = struct.Struct(f"<QQ{HIST}I")
STEPS_OFF = _HEAD.size
SIDES_OFF = STEPS_OFF + _STEPS.size
SIZE = SIDES_OFF + 2 * _SIDE.size
STABLE, CANARY = 0, 1
ROLLED_BACK_OFF = 0
STARTED_OFF = 16  # rolled_back B, 3 pad, I, Q fingerprint: started_at at byte 16


@dataclass
class Side:
    requests: int = 0
    errors: int = 0
    hist: list[int] = field(default_factory=lambda: [0] * HIST)

    def p95_ms(self) -> float | None:
        if not self.requests:
            return None
        target = 0.95 * sum(self.hist)
        seen = 0
        for i, n in enumerate(self.hist):
            seen += n
            if seen >= target:
                return BOUNDS_MS[i]
        return BOUNDS_MS[-1]

    def error_rate(self) -> float:
        return self.errors * 100.0 / self.requests if self.requests else 0.0


@dataclass
class Record:
    fingerprint: int = 0
    started_at: float = 0.0
    steps: list[tuple[float, float]] = field(default_factory=list)
    stable_upstream: str = ""
    canary_upstream: str = ""
    rolled_back: bool = False
    rolled_back_at: float = 0.0
    reason: str = ""
    sides: list[Side] = field(default_factory=lambda: [Side(), Side()])

    def pack(self) -> bytes:
        head = _HEAD.pack(self.rolled_back, 0, self.fingerprint, self.started_at,
                          self.rolled_back_at, len(self.steps),
                          self.stable_upstream.encode()[:NAME_SIZE],
                          self.canary_upstream.encode()[:NAME_SIZE],
                          self.reason.encode()[:REASON_SIZE])
        flat = [x for step in self.steps for x in step]
        steps = _STEPS.pack(*(flat + [0.0] * (2 * MAX_STEPS - len(flat))))
        return head + steps + b"".join(_SIDE.pack(s.requests, s.errors, *s.hist)
                                       for s in self.sides)

    @classmethod
    def unpack(cls, data: bytes) -> Record:
        rb, _, fp, started, rb_at, n, stable, canary, reason = _HEAD.unpack_from(data, 0)
        flat = _STEPS.unpack_from(data, STEPS_OFF)
        sides = []
        for i in range(2):
            v = _SIDE.unpack_from(data, SIDES_OFF + i * _SIDE.size)
            sides.append(Side(v[0], v[1], list(v[2:])))
        return cls(fp, started, [(flat[2 * i], flat[2 * i + 1]) for i in range(n)],
                   stable.rstrip(b"\0").decode(), canary.rstrip(b"\0").decode(), bool(rb),
                   rb_at, reason.rstrip(b"\0").decode(errors="replace"), sides)


def schedule(steps: list[tuple[float, float]], elapsed: float) -> tuple[int, float, float | None]:
    """(step index, its percent, when the next step starts in seconds from the rollout's
    start — None on the last step) at `elapsed` seconds into the rollout."""
    start = 0.0
    for i, (percent, duration) in enumerate(steps):
        last = i == len(steps) - 1
        if last or duration <= 0 or elapsed < start + duration:
            return i, percent, (None if last or duration <= 0 else start + duration)
        start += duration
    return len(steps) - 1, steps[-1][0] if steps else 0.0, None


def step_start(steps: list[tuple[float, float]], index: int) -> float:
    return sum(d for _, d in steps[:index])


def bucket(latency_ms: float) -> int:
    """The histogram bucket of a latency: the first bound >= it."""
    lo, hi = 0, HIST - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if BOUNDS_MS[mid] >= latency_ms:
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass
class Thresholds:
    max_error_rate_increase: float = 5.0
    max_latency_ratio: float = 1.5
    min_samples: int = 50
    min_latency_increase: float = 50.0  # ms


def judge(rec: Record, t: Thresholds) -> str | None:
    """Why the canary must be rolled back, or None. The canary is judged once it has
    `min_samples` requests; stable's error rate counts as 0 until stable has as many (a canary
    at 100 % leaves stable none), and latency is compared only when both sides have them."""
    stable, canary = rec.sides
    if canary.requests < t.min_samples:
        return None
    base = stable.error_rate() if stable.requests >= t.min_samples else 0.0
    rate = canary.error_rate()
    if rate - base > t.max_error_rate_increase:
        return (f"canary error rate {rate:.1f}% ({canary.errors}/{canary.requests}) exceeds "
                f"stable's {base:.1f}% ({stable.errors}/{stable.requests}) by more than "
                f"{t.max_error_rate_increase:g} points")
    if stable.requests >= t.min_samples:
        sp, cp = stable.p95_ms(), canary.p95_ms()
        if (sp is not None and cp is not None and cp > sp * t.max_latency_ratio
                and cp - sp >= t.min_latency_increase):
            return (f"canary p95 latency {cp:.0f} ms exceeds {t.max_latency_ratio:g} x "
                    f"stable's p95 {sp:.0f} ms")
    return None


def weight(rec: Record, now: float) -> float:
    if rec.rolled_back or not rec.steps:
        return 0.0
    return schedule(rec.steps, now - rec.started_at)[1]


def describe(name: str, rec: Record, now: float) -> dict[str, Any]:
    index, percent, next_at = schedule(rec.steps, now - rec.started_at) if rec.steps else \
        (0, 0.0, None)
    if rec.rolled_back:
        status = "rolled_back"
    elif next_at is None and index == len(rec.steps) - 1:
        status = "complete" if percent >= 100 else "holding"
    else:
        status = "progressing"

    def side(s: Side) -> dict[str, Any]:
        return {"requests": s.requests, "errors": s.errors,
                "error_rate": round(s.error_rate(), 2), "p95_ms": s.p95_ms()}

    return {
        "name": name, "status": status,
        "stable_upstream": rec.stable_upstream, "canary_upstream": rec.canary_upstream,
        "weight": 0.0 if rec.rolled_back else percent,
        "step": index + 1,
        "steps": [{"percent": p, "duration": d} for p, d in rec.steps],
        "started_at": rec.started_at,
        "step_since": rec.started_at + step_start(rec.steps, index),
        "next_step_at": None if next_at is None or rec.rolled_back else rec.started_at + next_at,
        "rolled_back": rec.rolled_back,
        "rolled_back_at": rec.rolled_back_at if rec.rolled_back else None,
        "reason": rec.reason or None,
        "stable": side(rec.sides[STABLE]), "canary": side(rec.sides[CANARY]),
    }
