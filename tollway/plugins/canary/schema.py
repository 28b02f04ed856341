"""canary's config. Not a Kong plugin (Kong EE's canary plugin splits on a service's host/
upstream; this one splits between two `upstreams` entities): Kong's conventions for fields
and messages."""

from __future__ import annotations

from typing import Any

from tollway.config import typedefs as t
from tollway.config.checks import conditional, custom_entity_check
from tollway.config.schema import Field, Record

STEP = Record(fields={
    "percent": Field.number(required=True, between=(0, 100)),
    # seconds at this percent before the next step; 0 on the last step holds it for good
    "duration": Field.number(default=0, between=(0, 31_536_000)),
})

MAX_STEPS = 16


def _distinct_upstreams(config: dict[str, Any]) -> str | None:
    if config.get("stable_upstream") == config.get("canary_upstream"):
        return "stable_upstream and canary_upstream must be different upstreams"
    return None


def _steps_progress(config: dict[str, Any]) -> str | None:
    steps = config.get("steps") or []
    for step in steps[:-1]:
        if not step.get("duration"):
            return "every step but the last needs a duration greater than 0"
    return None


config_schema = Record(
    fields={
        "stable_upstream": Field.string(required=True, len_min=1),
        "canary_upstream": Field.string(required=True, len_min=1),
        "steps": Field.array(Field.record_of(STEP), len_min=1, len_max=MAX_STEPS,
                             default=[{"percent": 10, "duration": 300},
                                      {"percent": 50, "duration": 300},
                                      {"percent": 100, "duration": 0}]),
        # what keeps a client on one side: its IP, a header or a cookie (a request without
        # the header/cookie falls back to its IP); none: each request drawn at random
        "hash_on": Field.string(default="ip", one_of=["none", "ip", "header", "cookie"]),
        "hash_on_header": t.header_name(),
        "hash_on_cookie": Field.string(len_min=1, match=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"),
        # roll back when the canary's error rate is this many percentage points above stable's
        "max_error_rate_increase": Field.number(default=5, between=(0, 100)),
        # ... or its p95 latency is more than this many times stable's
        "max_latency_ratio": Field.number(default=1.5, gt=0),
        # ... and by at least this many milliseconds (a 2 ms p95 against 1 ms is noise)
        "min_latency_increase": Field.number(default=50, between=(0, 3_600_000)),
        # canary requests (and stable requests, for the latency comparison) before judging
        "min_samples": Field.integer(default=50, between=(1, 1_000_000)),
    },
    entity_checks=[
        conditional("hash_on", Field.string(eq="header"), "hash_on_header",
                    Field.string(required=True)),
        conditional("hash_on", Field.string(eq="cookie"), "hash_on_cookie",
                    Field.string(required=True)),
        custom_entity_check(("stable_upstream", "canary_upstream"), _distinct_upstreams),
        custom_entity_check(("steps",), _steps_progress),
    ],
)
