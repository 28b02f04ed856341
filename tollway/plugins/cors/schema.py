"""cors's config (Kong's `kong/plugins/cors/schema.lua`, 3.10 fields included)."""

from __future__ import annotations

import re

from tollway.config.schema import Field, Record
from tollway.config.typedefs import to_python_regex

METHODS = ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT"]


def validate_asterisk_or_regex(value: str) -> str | None:
    if value == "*":
        return None
    try:
        re.compile(to_python_regex(value))
    except (re.error, RecursionError, OverflowError):
        return f"'{value}' is not a valid regex"
    return None


config_schema = Record(
    fields={
        "origins": Field.array(Field.string(custom_validator=validate_asterisk_or_regex)),
        "headers": Field.array(Field.string()),
        "exposed_headers": Field.array(Field.string()),
        "methods": Field.array(Field.string(one_of=METHODS), default=METHODS),
        "max_age": Field.number(),
        "credentials": Field.boolean(required=True, default=False),
        "private_network": Field.boolean(required=True, default=False),
        "preflight_continue": Field.boolean(required=True, default=False),
        # Kong 3.10: without an Origin header, add no CORS header at all when false.
        "allow_origin_absent": Field.boolean(required=True, default=True),
    },
)
