"""request-size-limiting's config (Kong's `kong/plugins/request-size-limiting/schema.lua`)."""

from __future__ import annotations

from tollway.config.schema import Field, Record

SIZE_UNITS = ("megabytes", "kilobytes", "bytes")
UNIT_BYTES = {"megabytes": 1 << 20, "kilobytes": 1 << 10, "bytes": 1}

config_schema = Record(
    fields={
        "allowed_payload_size": Field.integer(default=128),
        "size_unit": Field.string(required=True, default="megabytes", one_of=SIZE_UNITS),
        "require_content_length": Field.boolean(required=True, default=False),
    },
)
