"""Upstream request headers set by plugins (req.set_header / add_header / clear_header and
kong.client.authenticate's X-Consumer-* headers) through real sockets: the consumer headers
are built once per consumer and shared by requests, so a plugin adding to one must never
change what the next request sends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from dataplane_helpers import Gateway, RawClient, Upstream, echo_path, upstream_thread

from tollway.config.schema import Record
from tollway.plugins import registry
from tollway.plugins.base import Plugin


class AddsToConsumerHeader(Plugin):
    """After key-auth (1250): adds a value to X-Consumer-ID, sets and clears others."""

    name = "test-overlay"
    priority: ClassVar[int] = 1000
    config_schema = Record(fields={})

    def access(self, req: Any) -> None:
        req.add_header(b"X-Consumer-ID", b"extra")
        req.set_header("X-Set", "one")
        req.add_header("X-Set", "two")
        req.clear_header("X-Client")


class ReadsHeaders(Plugin):
    """After test-overlay (1000): what get_header / get_headers / raw_header see now, as
    response headers."""

    name = "test-overlay-reader"
    priority: ClassVar[int] = 900
    config_schema = Record(fields={})

    def access(self, req: Any) -> None:
        seen = {
            "set": req.get_headers("x-set"),
            "cleared": req.get_header("X-Client"),
            "raw-cleared": req.raw_header(b"x-client"),
            "consumer": req.get_header("X-Consumer-Username"),
            "raw-set": req.raw_header(b"x-set"),
            "untouched": req.get_header("X-Other"),
            "raw-repeated": req.raw_header(b"x-twice"),
            "raw-mixed-case": req.raw_header(b"x-other"),
        }
        for key, value in seen.items():
            req.set_response_header(f"X-Seen-{key}", repr(value))


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with upstream_thread(echo_path, "overlay-upstream") as up:
        yield up


@pytest.fixture
def gateway(upstream: Upstream) -> Iterator[Gateway]:
    registry.register(AddsToConsumerHeader)
    registry.register(ReadsHeaders)
    gw = Gateway({"_format_version": "3.0",
                  "services": [{"name": "svc", "url": upstream.url,
                                "routes": [{"name": "r", "paths": ["/"],
                                            "plugins": [{"name": "key-auth"},
                                                        {"name": "test-overlay"},
                                                        {"name": "test-overlay-reader"}]}]}],
                  "consumers": [{"username": "alice", "custom_id": "a-1",
                                 "keyauth_credentials": [{"key": "alice-key"}]}]}, {})
    yield gw
    gw.close()
    registry.unregister(AddsToConsumerHeader.name)
    registry.unregister(ReadsHeaders.name)


def test_every_request_sends_the_same_headers(gateway: Gateway, upstream: Upstream) -> None:
    consumer_id = gateway.config.entities["consumers"][0]["id"]
    client = RawClient(gateway.port, 5.0)
    try:
        for _ in range(3):
            resp = client.request("GET", "/", [("apikey", "alice-key"), ("X-Client", "c"),
                                               ("X-Consumer-Username", "spoofed")])
            assert resp.status == 200
            seen = upstream.requests[-1]
            assert seen.all("x-consumer-id") == [consumer_id, "extra"]
            assert seen.all("x-consumer-custom-id") == ["a-1"]
            assert seen.all("x-consumer-username") == ["alice"]  # the spoofed one is gone
            assert seen.all("x-credential-identifier") != []
            assert seen.all("x-set") == ["one", "two"]
            assert seen.all("x-client") == []
    finally:
        client.close()


def test_reading_headers_sees_what_plugins_set(gateway: Gateway) -> None:
    """As Kong's kong.request.get_header after kong.service.request.set_header / add_header /
    clear_header and kong.client.authenticate: the request's headers as they are now."""
    client = RawClient(gateway.port, 5.0)
    try:
        resp = client.request("GET", "/", [("apikey", "alice-key"), ("X-Client", "c"),
                                           ("X-Consumer-Username", "spoofed"),
                                           ("X-Other", "o"), ("X-Twice", "first"),
                                           ("x-TWICE", "second")])
        assert resp.status == 200
        assert resp.header("X-Seen-set") == "['one', 'two']"
        assert resp.header("X-Seen-cleared") == "None"
        assert resp.header("X-Seen-raw-cleared") == "None"
        assert resp.header("X-Seen-consumer") == "'alice'"
        assert resp.header("X-Seen-raw-set") == "b'one'"
        assert resp.header("X-Seen-untouched") == "'o'"
        # a repeated header: the first value, whatever the spelling (Kong's get_header)
        assert resp.header("X-Seen-raw-repeated") == "b'first'"
        assert resp.header("X-Seen-raw-mixed-case") == "b'o'"
    finally:
        client.close()
