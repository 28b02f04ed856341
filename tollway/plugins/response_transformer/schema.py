"""response-transformer's config schema (Kong 3.8+ `kong/plugins/response-transformer/schema.lua`).

    remove  {json, headers}               names
    rename  {json, headers}               old:new
    replace {json, json_types, headers}   name:value
    add     {json, json_types, headers}   name:value
    append  {json, json_types, headers}   name:value

`json_types[i]` (boolean/number/string) is the type of the i-th `json` value.
"""

from __future__ import annotations

from tollway.config.schema import Field, Record
from tollway.plugins.request_transformer.schema import COLON, validate_colon_headers


def _array(elements: Field) -> Field:
    return Field.array(elements, default=[], required=True)


string_array = _array(Field.string())
colon_string_array = _array(Field.string(match=COLON))
colon_headers_array = _array(Field.string(match=COLON, custom_validator=validate_colon_headers))
json_types = _array(Field.string(one_of=["boolean", "number", "string"]))

string_record = Field.record_of({"json": string_array, "headers": string_array},
                                required=True)


def _colon_record() -> Field:
    return Field.record_of({"json": colon_string_array, "json_types": json_types,
                            "headers": colon_string_array}, required=True)


config_schema = Record(fields={
    "remove": string_record,
    "rename": Field.record_of({"json": colon_string_array, "headers": colon_headers_array},
                              required=True),
    "replace": _colon_record(),
    "add": _colon_record(),
    "append": _colon_record(),
})
