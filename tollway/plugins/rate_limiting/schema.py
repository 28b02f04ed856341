"""The rate-limiting `config` schema (Kong 3.6+ with the 3.5 flat `redis_*` shorthands).

Kong's plugin-level entity checks name fields as `config.<field>`; here they run on the
config record, so their messages land under `config.@entity` (see the package report).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tollway.config import typedefs as t
from tollway.config.schema import EntityCheck, Field, Record, validate_field

PERIODS = ("second", "minute", "hour", "day", "month", "year")
SYNC_RATE_REALTIME = -1

# kong/tools/redis/schema.lua (3.6+); connect/send/read timeouts as Kong EE names them
# (optional: unset means `timeout`).
REDIS = Record(fields={
    "host": t.host(),
    "port": t.port(default=6379),
    "timeout": t.timeout(default=2000),
    "connect_timeout": t.timeout(),
    "send_timeout": t.timeout(),
    "read_timeout": t.timeout(),
    "username": Field.string(),
    "password": Field.string(len_min=0),
    "database": Field.integer(default=0),
    "ssl": Field.boolean(default=False),
    "ssl_verify": Field.boolean(default=False),
    "server_name": t.sni(),
})

# The 3.5 flat fields: shorthands writing into config.redis.<name> (Kong's shorthand_fields).
SHORTHANDS: dict[str, tuple[str, Field]] = {
    "redis_host": ("host", Field.string()),
    "redis_port": ("port", Field.integer()),
    "redis_password": ("password", Field.string(len_min=0)),
    "redis_username": ("username", Field.string()),
    "redis_ssl": ("ssl", Field.boolean()),
    "redis_ssl_verify": ("ssl_verify", Field.boolean()),
    "redis_server_name": ("server_name", Field.string()),
    "redis_timeout": ("timeout", Field.integer()),
    "redis_database": ("database", Field.integer()),
}


def _fmt1(value: float) -> str:
    return f"{value:.1f}"


def validate_periods_order(config: dict[str, Any]) -> str | None:
    """Kong's record custom_validator: period ordering, then the sync_rate rules."""
    for i, lower in enumerate(PERIODS):
        v1 = config.get(lower)
        if not isinstance(v1, int | float):
            continue
        for upper in PERIODS[i + 1:]:
            v2 = config.get(upper)
            if isinstance(v2, int | float) and v2 < v1:
                return (f"The limit for {upper}({_fmt1(v2)}) cannot be lower than the limit "
                        f"for {lower}({_fmt1(v1)})")
    sync_rate = config.get("sync_rate")
    if config.get("policy") != "redis" and sync_rate != SYNC_RATE_REALTIME:
        return "sync_rate can only be used with the redis policy"
    if (config.get("policy") == "redis" and sync_rate != SYNC_RATE_REALTIME
            and isinstance(sync_rate, int | float) and sync_rate < 0.02):
        return "sync_rate must be greater than 0.02, or -1 to disable"
    return None


def _conditional(if_field: str, if_value: str, path: tuple[str, ...]) -> EntityCheck:
    """Kong's plugin-level `conditional` with `then_match = { required = true }`: the missing
    field is reported where it lives (`redis.host`, `header_name`) and the entity error
    names the condition as Kong does (`config.<field>`)."""

    def fn(e: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        if e.get(if_field) != if_value:
            return [], {}
        value: Any = e
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            return [], {}
        err: dict[str, Any] = {path[-1]: "required field missing"}
        for part in reversed(path[:-1]):
            err = {part: err}
        return [f"failed conditional validation given value of field 'config.{if_field}'"], err

    return EntityCheck("conditional", (if_field, path[0]), fn)


def _at_least_one_period(e: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    if any(e.get(p) is not None for p in PERIODS):
        return [], {}
    names = ", ".join(f"'config.{p}'" for p in PERIODS)
    return [f"at least one of these fields must be non-empty: {names}"], {}


class ConfigRecord(Record):
    """The config record, expanding the flat `redis_*` shorthands into `redis` first and
    writing them back afterwards (Kong's translate_backwards: reads show both shapes)."""

    def validate(self, data: Mapping[str, Any] | None
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
        work = dict(data or {})
        errors: dict[str, Any] = {}
        given = work.get("redis")
        redis: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
        expanded = False
        for flat, (name, f) in SHORTHANDS.items():
            if flat not in work:
                continue
            value, err = validate_field(f, work.pop(flat))
            if err is not None:
                errors[flat] = err
            elif value is not None and redis.get(name) is None:
                # the record's own value wins when both forms are given
                redis[name] = value
                expanded = True
        if expanded and (given is None or isinstance(given, dict)):
            work["redis"] = redis
        out, rec_errors = super().validate(work)
        rec_errors.update(errors)
        if not rec_errors:
            msg = validate_periods_order(out)
            if msg is not None:
                rec_errors["@entity"] = [msg]
        rd = out.get("redis")
        if isinstance(rd, dict):
            for flat, (name, _) in SHORTHANDS.items():
                out[flat] = rd.get(name)
        return out, rec_errors


config_schema = ConfigRecord(
    fields={
        **{p: Field.number(gt=0) for p in PERIODS},
        "limit_by": Field.string(default="consumer", one_of=[
            "consumer", "credential", "ip", "service", "header", "path"]),
        "header_name": t.header_name(),
        "path": t.path(),
        "policy": Field.string(default="local", len_min=0,
                               one_of=["local", "cluster", "redis"]),
        "fault_tolerant": Field.boolean(required=True, default=True),
        "redis": Field.record_of(REDIS, required=True),
        "hide_client_headers": Field.boolean(required=True, default=False),
        "error_code": Field.number(default=429, gt=0),
        "error_message": Field.string(default="API rate limit exceeded"),
        "sync_rate": Field.number(required=True, default=SYNC_RATE_REALTIME),
    },
    entity_checks=[
        EntityCheck("at_least_one_of", PERIODS, _at_least_one_period),
        _conditional("policy", "redis", ("redis", "host")),
        _conditional("policy", "redis", ("redis", "port")),
        _conditional("policy", "redis", ("redis", "timeout")),
        _conditional("limit_by", "header", ("header_name",)),
        _conditional("limit_by", "path", ("path",)),
    ],
)
