"""ip-restriction's config (Kong's `kong/plugins/ip-restriction/schema.lua`).

Kong declares the "allow or deny" rule as an entity check of the plugin,
`at_least_one_of = { "config.allow", "config.deny" }`; here it is checked on the config
record with Kong's message, naming the fields as Kong does.
"""

from __future__ import annotations

from typing import Any

from tollway.config import typedefs as t
from tollway.config.schema import EntityCheck, Field, Record, quote_list


def _allow_or_deny(config: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    if config.get("allow") or config.get("deny"):
        return [], {}
    names = quote_list(["config.allow", "config.deny"])
    return [f"at least one of these fields must be non-empty: {names}"], {}


config_schema = Record(
    fields={
        "allow": Field.array(t.ip_or_cidr()),
        "deny": Field.array(t.ip_or_cidr()),
        "status": Field.number(),
        "message": Field.string(),
    },
    entity_checks=[EntityCheck("at_least_one_of", ("allow", "deny"), _allow_or_deny)],
)
