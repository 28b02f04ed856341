"""The worked example plugin (header-stamp) on an in-process gateway, through real sockets:
every config field, the phases, per-request and per-worker state, precedence, and what the
gateway does when a plugin raises."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from dataplane_helpers import Gateway, RawClient, Upstream
from tollway_header_stamp.handler import DownstreamHeaderStamp, HeaderStamp

from tollway.config.schema import Field, Record
from tollway.plugins import registry
from tollway.plugins.base import BuildContext, Plugin

PLUGIN_ID = "7b3c0a52-3b4e-4a6c-9d7e-0c5d6a1f2e01"

MakeGateway = Callable[..., Gateway]
MakeClient = Callable[[int], RawClient]


def doc(url: str, config: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """One service and route `/` with header-stamp on the route."""
    plugin = {"id": PLUGIN_ID, "name": "header-stamp", "config": config or {}}
    return {"_format_version": "3.0",
            "services": [{"name": "svc", "url": url,
                          "routes": [{"name": "r", "paths": ["/"], "plugins": [plugin]}]}],
            **extra}


def get(client: RawClient, path: str = "/", headers: list[tuple[str, str]] | None = None
        ) -> Any:
    return client.request("GET", path, headers or [])


def test_defaults_stamp_the_upstream_request_only(
        stamp_gateway: MakeGateway, stamp_upstream: Upstream, stamp_client: MakeClient) -> None:
    gw = stamp_gateway(doc(stamp_upstream.url))
    resp = get(stamp_client(gw.port))
    assert resp.status == 200
    assert stamp_upstream.requests[-1].all("x-stamp") == ["tollway"]
    assert resp.header("x-stamp") is None


@pytest.mark.parametrize(("on_exists", "upstream_sees", "echoed"), [
    ("override", ["tollway"], "tollway"),
    ("append", ["client", "tollway"], "tollway"),
    ("keep", ["client"], "client"),
])
def test_on_exists_when_the_client_sent_the_header(
        stamp_gateway: MakeGateway, stamp_upstream: Upstream, stamp_client: MakeClient,
        on_exists: str, upstream_sees: list[str], echoed: str) -> None:
    gw = stamp_gateway(doc(stamp_upstream.url, {"on_exists": on_exists,
                                                 "downstream_header": "X-Stamped"}))
    resp = get(stamp_client(gw.port), headers=[("X-Stamp", "client")])
    assert resp.status == 200
    assert stamp_upstream.requests[-1].all("x-stamp") == upstream_sees
    assert resp.all("x-stamped") == [echoed]


def test_without_the_client_header_every_mode_sets_it(
        stamp_gateway: MakeGateway, stamp_upstream: Upstream, stamp_client: MakeClient) -> None:
    for on_exists in ("override", "append", "keep"):
        gw = stamp_gateway(doc(stamp_upstream.url, {"on_exists": on_exists, "value": on_exists}))
        assert get(stamp_client(gw.port)).status == 200
        assert stamp_upstream.requests[-1].all("x-stamp") == [on_exists]


def test_downstream_only(stamp_gateway: MakeGateway, stamp_upstream: Upstream,
                         stamp_client: MakeClient) -> None:
    gw = stamp_gateway(doc(stamp_upstream.url, {"upstream_header": None,
                                                 "downstream_header": "X-Served-By",
                                                 "value": "edge-1"}))
    resp = get(stamp_client(gw.port), headers=[("X-Stamp", "client")])
    assert resp.all("x-served-by") == ["edge-1"]
    # no upstream header configured: the client's header goes through untouched
    assert stamp_upstream.requests[-1].all("x-stamp") == ["client"]
    assert stamp_upstream.requests[-1].all("x-served-by") == []


def test_include_worker_names_the_serving_process(
        stamp_gateway: MakeGateway, stamp_upstream: Upstream, stamp_client: MakeClient) -> None:
    gw = stamp_gateway(doc(stamp_upstream.url, {"include_worker": True, "value": "v"}))
    get(stamp_client(gw.port))
    assert stamp_upstream.requests[-1].header("x-stamp") == f"v; worker={os.getpid()}"


def test_require_header_answers_400_before_the_upstream(
        stamp_gateway: MakeGateway, stamp_upstream: Upstream, stamp_client: MakeClient) -> None:
    gw = stamp_gateway(doc(stamp_upstream.url, {"require_header": "X-Ticket",
                                                 "downstream_header": "X-Stamped"}))
    client = stamp_client(gw.port)
    resp = get(client)
    assert resp.status == 400
    assert resp.header("content-type") == "application/json; charset=utf-8"
    assert json.loads(resp.body) == {"message": "header 'X-Ticket' is required"}
    # the response phase runs on a plugin's own reply too; access did not get to store
    # the per-request value, so the configured stamp is echoed
    assert resp.all("x-stamped") == ["tollway"]
    assert stamp_upstream.requests == []
    resp = get(client, headers=[("x-ticket", "1")])
    assert resp.status == 200
    assert stamp_upstream.requests[-1].header("x-stamp") == "tollway"


def _stamped(gw: Gateway) -> int:
    stats: dict[str, int] = gw.state.plugin_state.get(f"header-stamp:{PLUGIN_ID}", {})
    return stats.get("stamped", 0)


def _wait_stamped(gw: Gateway, n: int) -> int:
    # the log phase runs after the response was sent: wait (bounded) for it
    deadline = time.monotonic() + 5
    while _stamped(gw) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return _stamped(gw)


def test_per_worker_state_outlives_a_config_change(
        stamp_gateway: MakeGateway, stamp_upstream: Upstream, stamp_client: MakeClient) -> None:
    gw = stamp_gateway(doc(stamp_upstream.url, {"require_header": "X-Ticket"}))
    client = stamp_client(gw.port)
    for _ in range(3):
        assert get(client, headers=[("X-Ticket", "1")]).status == 200
    assert get(client).status == 400  # answered before the stamp: not counted
    assert _wait_stamped(gw, 3) == 3
    gw.swap(doc(stamp_upstream.url, {"value": "changed"}))
    client = stamp_client(gw.port)
    assert get(client).status == 200
    assert stamp_upstream.requests[-1].header("x-stamp") == "changed"
    assert _wait_stamped(gw, 4) == 4  # same plugin id: the counter carried over


def test_the_most_specific_config_applies(
        stamp_gateway: MakeGateway, stamp_upstream: Upstream, stamp_client: MakeClient) -> None:
    document = {
        "_format_version": "3.0",
        "services": [{"name": "svc", "url": stamp_upstream.url, "routes": [
            {"name": "plain", "paths": ["/plain"]},
            {"name": "own", "paths": ["/own"],
             "plugins": [{"name": "header-stamp", "config": {"value": "route"}}]},
            {"name": "auth", "paths": ["/auth"],
             "plugins": [{"name": "key-auth", "config": {}}]},
        ]}],
        "consumers": [
            {"username": "alice", "keyauth_credentials": [{"key": "alice-key"}],
             "plugins": [{"name": "header-stamp", "config": {"value": "alice"}}]},
            {"username": "bob", "keyauth_credentials": [{"key": "bob-key"}]},
        ],
        "plugins": [{"name": "header-stamp", "config": {"value": "global"}}],
    }
    gw = stamp_gateway(document)
    client = stamp_client(gw.port)
    expected = [("/plain", [], "global"), ("/own", [], "route"),
                # key-auth (1250) runs before header-stamp (850): the consumer is known
                ("/auth", [("apikey", "alice-key")], "alice"),
                ("/auth", [("apikey", "bob-key")], "global")]
    for path, headers, value in expected:
        assert get(client, path, headers).status == 200, path
        assert stamp_upstream.requests[-1].header("x-stamp") == value, (path, headers)


def test_phases_are_chosen_per_config() -> None:
    ctx = BuildContext()
    config, errors = HeaderStamp.config_schema.validate({})
    assert errors == {}
    plain = HeaderStamp(config, {"id": "a"}, ctx)
    assert type(plain) is HeaderStamp and not hasattr(plain, "response")
    echoing = HeaderStamp({**config, "downstream_header": "X-S"}, {"id": "b"}, ctx)
    assert type(echoing) is DownstreamHeaderStamp and callable(echoing.response)
    assert plain.stamp == b"tollway" and plain.upstream_b == b"X-Stamp"


# -- what the gateway does when a plugin raises --------------------------------------------


class Broken(Plugin):
    """Raises in the phase named by `config.phase`."""

    name = "test-custom-broken"
    priority = 900
    config_schema: ClassVar[Record] = Record(fields={
        "phase": Field.string(default="access", one_of=["access", "response", "log"])})

    def access(self, req: Any) -> None:
        if self.config["phase"] == "access":
            raise RuntimeError("boom in access")

    def response(self, req: Any, headers: Any) -> None:
        if self.config["phase"] == "response":
            raise RuntimeError("boom in response")

    def log(self, req: Any) -> None:
        if self.config["phase"] == "log":
            raise RuntimeError("boom in log")


@pytest.fixture
def broken() -> Iterator[None]:
    registry.register(Broken)
    yield
    registry.unregister(Broken.name)


@pytest.mark.parametrize("phase", ["access", "response", "log"])
def test_a_raising_plugin(broken: None, stamp_gateway: MakeGateway, stamp_upstream: Upstream,
                          stamp_client: MakeClient, phase: str,
                          caplog: pytest.LogCaptureFixture) -> None:
    document = doc(stamp_upstream.url, {"downstream_header": "X-Stamped"})
    document["plugins"] = [{"name": Broken.name, "config": {"phase": phase}}]
    gw = stamp_gateway(document)
    resp = get(stamp_client(gw.port))
    if phase == "access":
        # Kong: an error in a handler is a 500 with kong.response.error's body
        assert resp.status == 500
        body = json.loads(resp.body)
        assert body["message"] == "An unexpected error occurred"
        assert set(body) == {"message", "request_id"}
        assert stamp_upstream.requests == []
        # header-stamp (850) runs after the failing plugin (900): its access never ran, its
        # response phase still did
        assert resp.all("x-stamped") == ["tollway"]
    else:
        # elsewhere the error is logged and the response goes on
        assert resp.status == 200
        assert resp.all("x-stamped") == ["tollway"]
    deadline = time.monotonic() + 5
    while f"boom in {phase}" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    assert f"plugin {Broken.name} failed" in caplog.text
    assert f"boom in {phase}" in caplog.text


class BrokenHeaders(Plugin):
    """Only a `response_headers` phase, which raises: the chain's light response path."""

    name = "test-custom-broken-headers"
    priority = 1000  # after cors (2000): the second of the route's response phase
    config_schema: ClassVar[Record] = Record(fields={})

    def response_headers(self, req: Any) -> None:
        raise RuntimeError("boom in response_headers")


def test_a_raising_response_headers_plugin_is_named(
        stamp_gateway: MakeGateway, stamp_upstream: Upstream, stamp_client: MakeClient,
        caplog: pytest.LogCaptureFixture) -> None:
    registry.register(BrokenHeaders)
    try:
        # with cors (also response_headers only) and no HeaderList plugin the route's
        # response phase is the light one: pre-bound methods, one loop
        document = doc(stamp_upstream.url)
        document["services"][0]["routes"][0]["plugins"] = [
            {"name": BrokenHeaders.name}, {"name": "cors", "config": {"origins": ["*"]}}]
        gw = stamp_gateway(document)
        resp = get(stamp_client(gw.port), headers=[("Origin", "http://a.example")])
    finally:
        registry.unregister(BrokenHeaders.name)
    # logged with its own name (not the first plugin's); cors's header is kept
    assert resp.status == 200
    assert resp.all("access-control-allow-origin") == ["*"]
    assert f"plugin {BrokenHeaders.name} failed in the response phase" in caplog.text
    assert "boom in response_headers" in caplog.text
