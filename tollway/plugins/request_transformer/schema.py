"""request-transformer's config schema (Kong 3.x `kong/plugins/request-transformer/schema.lua`).

    http_method                      uppercase method sent upstream
    remove  {body, headers, querystring}          names
    rename  {body, headers, querystring}          old:new
    replace {body, headers, querystring, uri}     name:value (uri: the upstream path)
    add     {body, headers, querystring}          name:value
    append  {body, headers, querystring}          name:value
"""

from __future__ import annotations

import re

from tollway.config import typedefs
from tollway.config.schema import Field, Record
from tollway.plugins.request_transformer.template import split_pair, template_error

_HEADER_NAME = re.compile(r"^[a-zA-Z0-9\-_]+$")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
COLON = r"^[^:]+:.*$"


def _pair(entry: str) -> tuple[str | None, str]:
    if not re.match(r"^[^:]+", entry):
        return None, ""
    return split_pair(entry)


def _bad_header(name: str | None) -> str:
    return f"'{'nil' if name is None else name}' is not a valid header"


def validate_headers(entry: str) -> str | None:
    """The part before the colon must be a header name (remove.headers, add/... headers)."""
    name, _ = _pair(entry)
    if name is None or not _HEADER_NAME.match(name):
        return _bad_header(name)
    return None


def validate_colon_headers(entry: str) -> str | None:
    """rename.headers: both sides are header names."""
    err = validate_headers(entry)
    if err is not None:
        return err
    _, value = _pair(entry)
    if not _HEADER_NAME.match(value):
        return _bad_header(value)
    return None


def validate_colon_header_values(entry: str) -> str | None:
    err = validate_headers(entry)
    if err is not None:
        return err
    _, value = _pair(entry)
    if _BAD_VALUE.search(value):
        return _bad_header(value)
    return template_error(value)


def check_for_value(entry: str) -> str | None:
    """Querystring/body pairs need a value, and the value must be a valid template."""
    name, value = _pair(entry)
    if name is None or value == "":
        return f"key '{'nil' if name is None else name}' has no value"
    return template_error(value)


def _array(elements: Field) -> Field:
    return Field.array(elements, default=[], required=True)


strings_array = _array(Field.string())
headers_array = _array(Field.string(custom_validator=validate_headers))
colon_strings_array = _array(Field.string(custom_validator=check_for_value))
colon_header_value_array = _array(
    Field.string(match=COLON, custom_validator=validate_colon_header_values))
colon_headers_array = _array(Field.string(match=COLON, custom_validator=validate_colon_headers))


def _uri(value: str) -> str | None:
    return template_error(value)


config_schema = Record(fields={
    "http_method": typedefs.http_method(),
    "remove": Field.record_of({"body": strings_array, "headers": headers_array,
                               "querystring": strings_array}, required=True),
    "rename": Field.record_of({"body": colon_strings_array, "headers": colon_headers_array,
                               "querystring": colon_strings_array}, required=True),
    "replace": Field.record_of({"body": colon_strings_array,
                                "headers": colon_header_value_array,
                                "querystring": colon_strings_array,
                                "uri": Field.string(custom_validator=_uri)}, required=True),
    "add": Field.record_of({"body": colon_strings_array, "headers": colon_header_value_array,
                            "querystring": colon_strings_array}, required=True),
    "append": Field.record_of({"body": colon_strings_array,
                               "headers": colon_header_value_array,
                               "querystring": colon_strings_array}, required=True),
})
