"""correlation-id's config (Kong's `kong/plugins/correlation-id/schema.lua`)."""

from __future__ import annotations

from tollway.config.schema import Field, Record

GENERATORS = ("uuid", "uuid#counter", "tracker")

config_schema = Record(
    fields={
        "header_name": Field.string(default="Kong-Request-ID"),
        "generator": Field.string(required=True, default="uuid#counter", one_of=GENERATORS),
        "echo_downstream": Field.boolean(required=True, default=False),
    },
)
