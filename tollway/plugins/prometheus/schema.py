"""Kong's prometheus `config` record. Kong defaults every flag to false; per DECISIONS.md #2
the request metrics (`status_code_metrics`, `latency_metrics`, `bandwidth_metrics`) default to
true here, because the seed's alerts and dashboard query them with only `per_consumer` set."""

from __future__ import annotations

from tollway.config.schema import Field, Record

config_schema = Record(fields={
    "per_consumer": Field.boolean(default=False),
    "status_code_metrics": Field.boolean(default=True),
    "latency_metrics": Field.boolean(default=True),
    "bandwidth_metrics": Field.boolean(default=True),
    "upstream_health_metrics": Field.boolean(default=False),
})
