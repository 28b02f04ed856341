"""proxy-cache's config schema (Kong 3.x `kong/plugins/proxy-cache/schema.lua`); only the
`memory` strategy exists in the open-source product."""

from __future__ import annotations

from typing import Any

from tollway.config.schema import EntityCheck, Field, Record

# Kong's nginx template's lua_shared_dict names and sizes (mem_cache_size = 128m for the
# db caches). A proxy-cache `memory.dictionary_name` must be one of them.
MiB = 1 << 20
SHARED_DICTS: dict[str, int] = {
    "kong": 5 * MiB, "kong_locks": 8 * MiB, "kong_healthchecks": 5 * MiB,
    "kong_cluster_events": 5 * MiB, "kong_rate_limiting_counters": 12 * MiB,
    "kong_core_db_cache": 128 * MiB, "kong_core_db_cache_miss": 12 * MiB,
    "kong_db_cache": 128 * MiB, "kong_db_cache_miss": 12 * MiB, "kong_secrets": 5 * MiB,
}


def _check_shdict(config: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    if config.get("strategy") == "memory":
        name = (config.get("memory") or {}).get("dictionary_name")
        if name not in SHARED_DICTS:
            return [f"missing shared dict '{name}'"], {}
    return [], {}


config_schema = Record(
    fields={
        "response_code": Field.array(Field.integer(between=(100, 900)),
                                     default=[200, 301, 404], len_min=1, required=True),
        "request_method": Field.array(
            Field.string(one_of=["HEAD", "GET", "POST", "PATCH", "PUT"]),
            default=["GET", "HEAD"], required=True),
        "content_type": Field.array(Field.string(),
                                    default=["text/plain", "application/json"], required=True),
        "cache_ttl": Field.integer(default=300, gt=0),
        "strategy": Field.string(one_of=["memory"], required=True),
        "cache_control": Field.boolean(default=False, required=True),
        "ignore_uri_case": Field.boolean(default=False),
        "storage_ttl": Field.integer(),
        "memory": Field.record_of({
            "dictionary_name": Field.string(default="kong_db_cache", required=True),
        }),
        "vary_query_params": Field.array(Field.string()),
        "vary_headers": Field.array(Field.string()),
        "response_headers": Field.record_of({
            "age": Field.boolean(default=True),
            "X-Cache-Status": Field.boolean(default=True),
            "X-Cache-Key": Field.boolean(default=True),
        }),
    },
    entity_checks=[EntityCheck("shdict", ("strategy", "memory"), _check_shdict)],
)
