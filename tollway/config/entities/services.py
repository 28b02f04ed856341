"""services (``kong/db/schema/entities/services.lua``)."""

from __future__ import annotations

from typing import Any

from tollway.config import typedefs as t
from tollway.config.checks import conditional
from tollway.config.entities.base import EntitySpec
from tollway.config.schema import Field, Record, Shorthand


def _split_url(url: str) -> dict[str, Any]:
    """The ``url`` shorthand: all four of protocol/host/port/path are overwritten.

    Query, fragment and userinfo are dropped, as LuaSocket's ``url.parse`` use in Kong does.
    """
    scheme: str | None = None
    rest = url
    head, sep, tail = url.partition(":")
    if sep and head and head[0].isalpha() and all(c.isalnum() or c in "+-." for c in head):
        scheme, rest = head, tail
    host: str | None = None
    port_text: str | None = None
    path: str | None = None
    if rest.startswith("//"):
        rest = rest[2:]
        cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        authority, rest = rest[:cut], rest[cut:]
        authority = authority.rpartition("@")[2]
        parts = t.split_host_port(authority)
        if parts is not None:
            host, port_text = parts
        else:
            host = authority
    for stop in "?#":
        rest = rest.partition(stop)[0]
    path = rest or None
    port: Any
    if port_text:
        port = int(port_text) if port_text.isdigit() else port_text
    else:
        port = 443 if scheme == "https" else 80
    if scheme is None:
        scheme = "https" if port == 443 else "http"
    return {"protocol": scheme, "host": host or None, "port": port, "path": path}


_STREAM_OR_GRPC = ["tcp", "tls", "udp", "grpc", "grpcs"]
_TLS = ["https", "tls"]

SERVICES = EntitySpec(
    name="services",
    singular="service",
    endpoint_key="name",
    children=("routes", "plugins"),
    schema=Record(
        fields={
            "id": t.uuid(),
            "name": t.utf8_name(unique=True),
            "retries": Field.integer(default=5, between=(0, 32767)),
            "protocol": t.protocol(required=True, default="http"),
            "host": t.host(required=True),
            "port": t.port(required=True, default=80),
            "path": t.path(),
            "connect_timeout": Field.integer(default=60000, between=(1, t.MAX_TIMEOUT)),
            "write_timeout": Field.integer(default=60000, between=(1, t.MAX_TIMEOUT)),
            "read_timeout": Field.integer(default=60000, between=(1, t.MAX_TIMEOUT)),
            "tags": t.tags(),
            "client_certificate": Field.foreign("certificates"),
            "tls_verify": Field.boolean(),
            "tls_verify_depth": Field.integer(between=(0, 64)),
            "ca_certificates": Field.array(t.uuid()),
            "enabled": Field.boolean(required=True, default=True),
        },
        entity_checks=[
            conditional("protocol", Field.any(one_of=_STREAM_OR_GRPC), "path", Field.any(eq=None)),
            *(
                conditional("protocol", Field.any(not_one_of=_TLS), name, Field.any(eq=None))
                for name in (
                    "client_certificate",
                    "tls_verify",
                    "tls_verify_depth",
                    "ca_certificates",
                )
            ),
        ],
        shorthands={"url": Shorthand(Field.string(), _split_url)},
    ),
)
