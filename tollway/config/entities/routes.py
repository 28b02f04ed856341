"""routes (``routes.lua`` + ``routes_subschemas.lua``), traditional_compatible flavour."""

from __future__ import annotations

from typing import Any

from tollway.config import typedefs as t
from tollway.config.checks import at_least_one_of, conditional, conditional_at_least_one_of
from tollway.config.entities.base import EntitySpec
from tollway.config.schema import Field, Record

_HOST_HEADER = "cannot contain 'host' header, which must be specified in the 'hosts' attribute"


def _no_host_header(name: str) -> str | None:
    return _HOST_HEADER if name.lower() == "host" else None


_SOURCE = Field.record_of(
    Record(
        fields={"ip": t.ip_or_cidr(), "port": t.port()},
        entity_checks=[at_least_one_of("ip", "port")],
    )
)

_PROTOCOL_GROUPS = [
    ["http", "https"],
    ["tcp", "tls", "udp"],
    ["tls_passthrough"],
    ["grpc", "grpcs"],
]
_SNI_PROTOCOLS = {"grpcs", "https", "tls", "tls_passthrough"}


def _contains(*names: str) -> Any:
    return lambda value: isinstance(value, list) and any(n in value for n in names)


def _none_of(names: set[str]) -> Any:
    return lambda value: isinstance(value, list) and not any(v in names for v in value)


def _forbidden(name: str, base: Field, when: str) -> Field:
    return base.with_(eq=None, err=f"cannot set '{name}' when 'protocols' is {when}")


_HTTP_WHEN = "'http' or 'https'"
_STREAM_WHEN = "'tcp', 'tls', 'tls_passthrough' or 'udp'"
_GRPC_WHEN = "'grpc' or 'grpcs'"

_BASE_FIELDS: dict[str, Field] = {
    "id": t.uuid(),
    "name": t.utf8_name(unique=True),
    "protocols": t.protocols(
        required=True,
        len_min=1,
        default=["http", "https"],
        mutually_exclusive_subsets=_PROTOCOL_GROUPS,
    ),
    "methods": Field.set(t.http_method()),
    "hosts": Field.array(Field.string(custom_validator=t.validate_route_host)),
    "paths": Field.array(Field.string(custom_validator=t.validate_router_path)),
    "headers": Field.map(
        keys=Field.string(custom_validator=_no_host_header),
        values=Field.array(Field.string()),
    ),
    "https_redirect_status_code": Field.integer(
        required=True, default=426, one_of=[426, 301, 302, 307, 308]
    ),
    "regex_priority": Field.integer(default=0),
    "strip_path": Field.boolean(required=True, default=True),
    "path_handling": Field.string(default="v0", one_of=["v0", "v1"]),
    "preserve_host": Field.boolean(required=True, default=False),
    "request_buffering": Field.boolean(required=True, default=True),
    "response_buffering": Field.boolean(required=True, default=True),
    "snis": Field.set(t.wildcard_host()),
    "sources": Field.set(_SOURCE),
    "destinations": Field.set(_SOURCE),
    "tags": t.tags(),
    "service": Field.foreign("services"),
}

_HTTP = Record(
    fields={n: _forbidden(n, _BASE_FIELDS[n], _HTTP_WHEN) for n in ("sources", "destinations")},
    entity_checks=[
        conditional_at_least_one_of(
            "protocols",
            _contains("https"),
            ["methods", "hosts", "headers", "paths", "snis"],
            "must set one of %s when 'protocols' is 'https'",
            _contains("http"),
            ["methods", "hosts", "headers", "paths"],
            "must set one of %s when 'protocols' is 'http'",
        )
    ],
)

_STREAM = Record(
    fields={
        n: _forbidden(n, _BASE_FIELDS[n], _STREAM_WHEN)
        for n in ("methods", "hosts", "paths", "headers")
    },
    entity_checks=[
        conditional_at_least_one_of(
            "protocols",
            _contains("tcp", "tls", "udp"),
            ["sources", "destinations", "snis"],
            "must set one of %s when 'protocols' is 'tcp', 'tls' or 'udp'",
        ),
        conditional_at_least_one_of(
            "protocols",
            _contains("tls_passthrough"),
            ["snis"],
            "must set snis when 'protocols' is 'tls_passthrough'",
        ),
    ],
)

_GRPC = Record(
    fields={
        "strip_path": Field.boolean(
            required=True,
            default=False,
            eq=False,
            err=f"cannot set 'strip_path' when 'protocols' is {_GRPC_WHEN}",
        ),
        **{
            n: _forbidden(n, _BASE_FIELDS[n], _GRPC_WHEN)
            for n in ("methods", "sources", "destinations")
        },
    },
    entity_checks=[
        conditional_at_least_one_of(
            "protocols",
            _contains("grpcs"),
            ["hosts", "headers", "paths", "snis"],
            "must set one of %s when 'protocols' is 'grpcs'",
            _contains("grpc"),
            ["hosts", "headers", "paths"],
            "must set one of %s when 'protocols' is 'grpc'",
        )
    ],
)

ROUTES = EntitySpec(
    name="routes",
    singular="route",
    endpoint_key="name",
    children=("plugins",),
    schema=Record(
        fields=_BASE_FIELDS,
        entity_checks=[
            conditional(
                "protocols",
                _none_of(_SNI_PROTOCOLS),
                "snis",
                Field.any(len_eq=0),
                "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or "
                "'tls_passthrough'",
            )
        ],
        subschema_key="protocols",
        subschemas={
            "http": _HTTP,
            "https": _HTTP,
            "tcp": _STREAM,
            "tls": _STREAM,
            "udp": _STREAM,
            "tls_passthrough": _STREAM,
            "grpc": _GRPC,
            "grpcs": _GRPC,
        },
    ),
)
