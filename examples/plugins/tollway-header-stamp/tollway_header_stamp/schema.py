"""header-stamp's config, written with Tollway's schema engine (Kong's field attributes)."""

from __future__ import annotations

from tollway.config import typedefs as t
from tollway.config.checks import at_least_one_of
from tollway.config.schema import Field, Record


def printable_ascii(value: str) -> str | None:
    """A custom validator: None when the value is fine, else the error message."""
    if all(" " <= ch <= "~" for ch in value):
        return None
    return "value must contain only printable ASCII characters"


config_schema = Record(
    fields={
        # t.header_name: a string with Kong's header-name validator and message
        "upstream_header": t.header_name(default="X-Stamp"),
        "downstream_header": t.header_name(),
        "value": Field.string(default="tollway", len_max=256,
                              custom_validator=printable_ascii),
        "on_exists": Field.string(default="override", one_of=["override", "append", "keep"]),
        "include_worker": Field.boolean(default=False),
        "require_header": t.header_name(),
    },
    entity_checks=[at_least_one_of("upstream_header", "downstream_header")],
)
