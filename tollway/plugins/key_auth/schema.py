"""key-auth configuration (kong/plugins/key-auth/schema.lua, 3.7+ with `realm`)."""

from __future__ import annotations

from tollway.config import typedefs as t
from tollway.config.schema import Field, Record

config_schema = Record(
    fields={
        "key_names": Field.array(t.header_name(), required=True, default=["apikey"]),
        "hide_credentials": Field.boolean(required=True, default=False),
        "anonymous": Field.string(),
        "key_in_header": Field.boolean(required=True, default=True),
        "key_in_query": Field.boolean(required=True, default=True),
        "key_in_body": Field.boolean(required=True, default=False),
        "run_on_preflight": Field.boolean(required=True, default=True),
        "realm": Field.string(),
    },
)
