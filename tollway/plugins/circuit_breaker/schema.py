"""circuit-breaker's config. Not a Kong plugin (Kong's nearest relative is the passive health
check of an upstream): the fields and messages follow Kong's conventions."""

from __future__ import annotations

from tollway.config.schema import Field, Record

config_schema = Record(fields={
    # percent of failed calls (5xx, timeouts, connection errors) in the window that opens it
    "failure_threshold": Field.number(default=50, between=(1, 100)),
    # fewer calls than this in the window never open the breaker
    "minimum_calls": Field.integer(default=20, between=(1, 1_000_000)),
    # the rolling window, seconds
    "window_size": Field.number(default=10, between=(1, 3600)),
    # seconds an open breaker waits before letting probes through (half-open)
    "cooldown": Field.number(default=30, between=(1, 86400)),
    # successful probes that close a half-open breaker (one failed probe reopens it)
    "half_open_probes": Field.integer(default=3, between=(1, 100)),
})
