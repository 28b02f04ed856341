"""correlation-id `config`: Kong's fields, defaults and messages; generators."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tollway.plugins import registry
from tollway.plugins.correlation_id import generators
from tollway.plugins.correlation_id.handler import CorrelationIdPlugin, EchoingCorrelationId

DEFAULTS = {"header_name": "Kong-Request-ID", "generator": "uuid#counter",
            "echo_downstream": False}


def test_registered_with_kong_39_priority() -> None:
    assert registry.get("correlation-id") is CorrelationIdPlugin
    assert CorrelationIdPlugin.priority == 100001
    assert not CorrelationIdPlugin.no_consumer


@pytest.mark.parametrize(("config", "expected"), [
    (None, DEFAULTS),
    ({}, DEFAULTS),
    ({"header_name": "X-Request-ID", "generator": "uuid", "echo_downstream": True},
     {"header_name": "X-Request-ID", "generator": "uuid", "echo_downstream": True}),
    ({"generator": "tracker"}, {**DEFAULTS, "generator": "tracker"}),
    # header_name is a plain string in Kong (no header-name validator)
    ({"header_name": "weird name"}, {**DEFAULTS, "header_name": "weird name"}),
])
def test_defaults(config: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    normalised, errors = registry.validate_plugin_config("correlation-id", config)
    assert errors == {}
    assert normalised == expected


@pytest.mark.parametrize(("config", "errors"), [
    ({"generator": "uuid4"}, {"generator": "expected one of: uuid, uuid#counter, tracker"}),
    ({"generator": None}, {"generator": "required field missing"}),
    ({"echo_downstream": None}, {"echo_downstream": "required field missing"}),
    ({"echo_downstream": "yes"}, {"echo_downstream": "expected a boolean"}),
    ({"header_name": 5}, {"header_name": "expected a string"}),
    ({"header_name": ""}, {"header_name": "length must be at least 1"}),
    ({"header": "X"}, {"header": "unknown field"}),
])
def test_errors(config: dict[str, Any], errors: dict[str, Any]) -> None:
    _, got = registry.validate_plugin_config("correlation-id", config)
    assert got == {"config": errors}


def test_echo_selects_the_class_with_a_response_phase() -> None:
    quiet = CorrelationIdPlugin({**DEFAULTS}, {"id": "a"})
    loud = CorrelationIdPlugin({**DEFAULTS, "echo_downstream": True}, {"id": "b"})
    assert type(quiet) is CorrelationIdPlugin and not hasattr(quiet, "response_headers")
    assert type(loud) is EchoingCorrelationId and callable(loud.response_headers)


def test_uuid4_format() -> None:
    values = {generators.uuid4_bytes() for _ in range(1000)}  # past one 4 KiB refill
    assert len(values) == 1000
    for raw in values:
        v = raw.decode()
        u = uuid.UUID(v)
        assert (u.version, u.variant, str(u)) == (4, uuid.RFC_4122, v)
    # the variant digit takes all of 8, 9, a, b
    assert {v[19:20] for v in values} == {b"8", b"9", b"a", b"b"}
    assert isinstance(generators.uuid4(), str)


def test_counter_is_shared_per_worker() -> None:
    worker: dict[str, Any] = {}
    a = generators.build("uuid#counter", worker)
    b = generators.build("uuid#counter", worker)
    assert a is b
    first, second = a(None), b(None)
    assert re.fullmatch(rb"[0-9a-f-]{36}#1", first)
    assert second == first[:-1] + b"2"
    assert generators.build("uuid#counter", {})(None).endswith(b"#1")


class _Req:
    """What access reads and writes (raw_header, the request header overlay, ctx)."""

    def __init__(self) -> None:
        self.req_overlay: dict[bytes, Any] | None = None
        self.ctx: dict[str, Any] = {}

    def raw_header(self, lname: bytes) -> bytes | None:
        return None

    @property
    def sent(self) -> dict[bytes, bytes]:
        """The headers set, by name as given; each overlay line checked against it."""
        out = {}
        for lname, (name, values, line) in (self.req_overlay or {}).items():
            assert lname == name.lower() and line == name + b": " + values[0] + b"\r\n"
            out[name] = values[0]
        return out


def test_uuid_access_draws_across_batches() -> None:
    # access takes the batch's next id inline and refills when it is used up (IndexError)
    plugin = CorrelationIdPlugin({**DEFAULTS, "generator": "uuid"}, {"id": "u"})
    generators._ids.clear()
    values = []
    for _ in range(3 * generators._BATCH + 5):
        req = _Req()
        plugin.access(req)
        values.append(req.sent[b"Kong-Request-ID"])
        assert req.ctx["correlation-id"] == values[-1]
    assert len(set(values)) == len(values)
    for v in values:  # RFC 4122 version 4, in its canonical lower-case dashed form
        u = uuid.UUID(v.decode())
        assert u.version == 4 and u.variant == uuid.RFC_4122 and str(u).encode() == v
