"""upstreams and targets (``upstreams.lua``, ``targets.lua``)."""

from __future__ import annotations

from typing import Any

from tollway.config import typedefs as t
from tollway.config.checks import conditional, distinct
from tollway.config.entities.base import EntitySpec
from tollway.config.schema import Field, Record

HASH_ON = ["none", "consumer", "ip", "header", "cookie", "path", "query_arg", "uri_capture"]
ALGORITHMS = ["consistent-hashing", "least-connections", "round-robin", "latency"]


def _validate_upstream_name(name: str) -> str | None:
    parts = t.split_host_port(name)
    bad = f"Invalid name ('{name}'); must be a valid hostname"
    if parts is None:
        return bad
    host, port = parts
    if t.is_ip(host):
        return f"Invalid name ('{name}'); no ip addresses allowed"
    if not t.is_hostname(host):
        return bad
    if port is not None:
        return f"Invalid name ('{name}'); no port allowed"
    return None


def _statuses(default: list[int]) -> Field:
    return Field.array(Field.integer(between=(100, 999)), default=default)


def _counter() -> Field:
    return Field.integer(between=(0, 255), default=0)


def _seconds() -> Field:
    return Field.number(between=(0, 65535), default=0)


_ACTIVE_HEALTHY = [200, 302]
_ACTIVE_UNHEALTHY = [429, 404, 500, 501, 502, 503, 504, 505]
_PASSIVE_HEALTHY = [
    200,
    201,
    202,
    203,
    204,
    205,
    206,
    207,
    208,
    226,
    300,
    301,
    302,
    303,
    304,
    305,
    306,
    307,
    308,
]
_PASSIVE_UNHEALTHY = [429, 500, 503]
_CHECK_TYPES = ["tcp", "http", "https", "grpc", "grpcs"]

_ACTIVE = Record(
    fields={
        "type": Field.string(default="http", one_of=_CHECK_TYPES),
        "timeout": Field.number(between=(0, 65535), default=1),
        "concurrency": Field.integer(between=(1, 2**31), default=10),
        "http_path": t.path(default="/"),
        "https_sni": t.host(),
        "https_verify_certificate": Field.boolean(default=True),
        "headers": Field.map(keys=t.header_name(), values=Field.array(Field.string())),
        "healthy": Field.record_of(
            {
                "interval": _seconds(),
                "http_statuses": _statuses(_ACTIVE_HEALTHY),
                "successes": _counter(),
            }
        ),
        "unhealthy": Field.record_of(
            {
                "interval": _seconds(),
                "http_statuses": _statuses(_ACTIVE_UNHEALTHY),
                "tcp_failures": _counter(),
                "timeouts": _counter(),
                "http_failures": _counter(),
            }
        ),
    }
)

_PASSIVE = Record(
    fields={
        "type": Field.string(default="http", one_of=_CHECK_TYPES),
        "healthy": Field.record_of(
            {"http_statuses": _statuses(_PASSIVE_HEALTHY), "successes": _counter()}
        ),
        "unhealthy": Field.record_of(
            {
                "http_statuses": _statuses(_PASSIVE_UNHEALTHY),
                "tcp_failures": _counter(),
                "timeouts": _counter(),
                "http_failures": _counter(),
            }
        ),
    }
)

HEALTHCHECKS = Record(
    fields={
        "active": Field.record_of(_ACTIVE),
        "passive": Field.record_of(_PASSIVE),
        "threshold": Field.number(between=(0, 100), default=0),
    }
)


def _normalize_hashing(raw: dict[str, Any], out: dict[str, Any]) -> None:
    # Kong's order: a non-hashing algorithm clears hash_on; otherwise an explicit hash_on
    # decides the algorithm ("none" -> round-robin, anything else -> consistent-hashing).
    if out.get("algorithm") in ("least-connections", "latency"):
        out["hash_on"] = "none"
        return
    supplied = raw.get("hash_on")
    if supplied is not None and supplied in HASH_ON:
        out["algorithm"] = "round-robin" if supplied == "none" else "consistent-hashing"


def _hash(value: str) -> Field:
    return Field.any(match=f"^{value}$")


_REQUIRED = Field.any(required=True)

UPSTREAMS = EntitySpec(
    name="upstreams",
    singular="upstream",
    endpoint_key="name",
    children=("targets",),
    schema=Record(
        fields={
            "id": t.uuid(),
            "name": Field.string(
                required=True, unique=True, custom_validator=_validate_upstream_name
            ),
            "algorithm": Field.string(default="round-robin", one_of=ALGORITHMS),
            "hash_on": Field.string(default="none", one_of=HASH_ON),
            "hash_fallback": Field.string(default="none", one_of=HASH_ON),
            "hash_on_header": t.header_name(),
            "hash_fallback_header": t.header_name(),
            "hash_on_cookie": Field.string(custom_validator=t.validate_cookie_name),
            "hash_on_cookie_path": t.path(default="/"),
            "hash_on_query_arg": Field.string(len_min=1),
            "hash_fallback_query_arg": Field.string(len_min=1),
            "hash_on_uri_capture": Field.string(len_min=1),
            "hash_fallback_uri_capture": Field.string(len_min=1),
            "slots": Field.integer(default=10000, between=(10, 2**16)),
            "healthchecks": Field.record_of(HEALTHCHECKS),
            "tags": t.tags(),
            "host_header": t.host_with_optional_port(),
            "client_certificate": Field.foreign("certificates"),
            "use_srv_name": Field.boolean(default=False),
        },
        entity_checks=[
            conditional("hash_on", _hash("header"), "hash_on_header", _REQUIRED),
            conditional("hash_fallback", _hash("header"), "hash_fallback_header", _REQUIRED),
            conditional("hash_on", _hash("cookie"), "hash_on_cookie", _REQUIRED),
            conditional("hash_fallback", _hash("cookie"), "hash_on_cookie", _REQUIRED),
            conditional("hash_on", _hash("none"), "hash_fallback", Field.any(one_of=["none"])),
            conditional("hash_on", _hash("cookie"), "hash_fallback", Field.any(one_of=["none"])),
            conditional(
                "hash_on",
                _hash("consumer"),
                "hash_fallback",
                Field.any(one_of=[h for h in HASH_ON if h != "consumer"]),
            ),
            conditional(
                "hash_on",
                _hash("ip"),
                "hash_fallback",
                Field.any(one_of=[h for h in HASH_ON if h != "ip"]),
            ),
            conditional(
                "hash_on",
                _hash("path"),
                "hash_fallback",
                Field.any(one_of=[h for h in HASH_ON if h != "path"]),
            ),
            distinct("hash_on_header", "hash_fallback_header"),
            conditional("hash_on", _hash("query_arg"), "hash_on_query_arg", _REQUIRED),
            conditional("hash_fallback", _hash("query_arg"), "hash_fallback_query_arg", _REQUIRED),
            conditional("hash_on", _hash("uri_capture"), "hash_on_uri_capture", _REQUIRED),
            conditional(
                "hash_fallback", _hash("uri_capture"), "hash_fallback_uri_capture", _REQUIRED
            ),
            distinct("hash_on_query_arg", "hash_fallback_query_arg"),
            distinct("hash_on_uri_capture", "hash_fallback_uri_capture"),
        ],
        normalizer=_normalize_hashing,
    ),
)


def normalize_target(target: str) -> str | None:
    """``host[:port]`` with port 8000 appended and IPv6 bracketed; None when invalid."""
    parts = t.split_host_port(target)
    if parts is None:
        return None
    host, port = parts
    if host.startswith("["):
        if not t.is_ip(host):
            return None
    elif t.is_ip(host):
        if ":" in host:
            host = f"[{host}]"
    elif not t.is_hostname(host) or host.replace(".", "").isdigit():
        return None
    if port is None:
        port = "8000"
    elif not (port.isdigit() and 0 <= int(port) <= 65535):
        return None
    return f"{host}:{port}"


def _validate_target(target: str) -> str | None:
    if normalize_target(target) is None:
        return f"Invalid target ('{target}'); not a valid hostname or ip address"
    return None


def _normalize_target_field(raw: dict[str, Any], out: dict[str, Any]) -> None:
    value = out.get("target")
    if isinstance(value, str):
        out["target"] = normalize_target(value) or value


TARGETS = EntitySpec(
    name="targets",
    singular="target",
    endpoint_key="target",
    endpoint_key_unique=False,
    cache_key=("upstream", "target"),
    schema=Record(
        fields={
            "id": t.uuid(),
            "upstream": Field.foreign("upstreams", required=True),
            "target": Field.string(required=True, custom_validator=_validate_target),
            "weight": Field.integer(default=100, between=(0, 65535)),
            "tags": t.tags(),
        },
        normalizer=_normalize_target_field,
    ),
)
