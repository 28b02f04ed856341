"""An access method that returns `req.suspend()` and is resumed (or failed) by a callback,
as the redis rate-limiting policy does with its batched reply: through real sockets, with
header-stamp (priority 850) as the plugin that must run after the resumption."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from dataplane_helpers import Gateway, RawClient, Upstream
from test_custom_plugin_inprocess import doc, get

from tollway.config.schema import Field, Record
from tollway.plugins import registry
from tollway.plugins.base import Plugin

MakeGateway = Callable[..., Gateway]
MakeClient = Callable[[int], RawClient]


class Waits(Plugin):
    """Suspends the request; `mode` says how it is settled."""

    name = "test-suspends"
    priority = 900
    config_schema: ClassVar[Record] = Record(fields={
        "mode": Field.string(default="later",
                             one_of=["later", "now", "twice", "fail", "fail-later"])})

    def access(self, req: Any) -> Any:
        waiting = req.suspend()
        loop = asyncio.get_running_loop()
        mode = self.config["mode"]
        if mode == "later":
            loop.call_later(0.05, waiting.resume)
        elif mode == "now":  # settled before the runner sees it
            waiting.resume()
        elif mode == "twice":  # the first outcome counts
            loop.call_later(0.02, waiting.resume)
            loop.call_later(0.03, waiting.resume)
            loop.call_later(0.04, waiting.fail, RuntimeError("too late"))
        elif mode == "fail":
            waiting.fail(RuntimeError("store unreachable"))
        else:
            loop.call_later(0.02, waiting.fail, RuntimeError("store unreachable"))
        return waiting


@pytest.fixture
def waits() -> Iterator[None]:
    registry.register(Waits)
    yield
    registry.unregister(Waits.name)


@pytest.mark.parametrize("mode", ["later", "now", "twice"])
def test_resumed_requests_go_on_to_the_next_plugin_and_upstream(
        waits: None, stamp_gateway: MakeGateway, stamp_upstream: Upstream,
        stamp_client: MakeClient, mode: str) -> None:
    document = doc(stamp_upstream.url, {"downstream_header": "X-Stamped"})
    document["plugins"] = [{"name": Waits.name, "config": {"mode": mode}}]
    gw = stamp_gateway(document)
    client = stamp_client(gw.port)
    t0 = time.monotonic()
    for i in range(3):  # keep-alive: the connection serves the next request normally
        resp = get(client, f"/n{i}")
        assert resp.status == 200
        assert resp.all("x-stamped") == ["tollway"]
    if mode == "later":
        assert time.monotonic() - t0 >= 0.15  # each request really waited
    # header-stamp's access ran after the suspension, once per request
    assert [r.all("x-stamp") for r in stamp_upstream.requests] == [["tollway"]] * 3
    assert [r.target for r in stamp_upstream.requests] == ["/n0", "/n1", "/n2"]


@pytest.mark.parametrize("mode", ["fail", "fail-later"])
def test_a_failed_suspension_is_kongs_500(waits: None, stamp_gateway: MakeGateway,
                                          stamp_upstream: Upstream, stamp_client: MakeClient,
                                          mode: str, caplog: pytest.LogCaptureFixture) -> None:
    document = doc(stamp_upstream.url, {"downstream_header": "X-Stamped"})
    document["plugins"] = [{"name": Waits.name, "config": {"mode": mode}}]
    gw = stamp_gateway(document)
    resp = get(stamp_client(gw.port))
    assert resp.status == 500
    assert json.loads(resp.body)["message"] == "An unexpected error occurred"
    assert stamp_upstream.requests == []
    assert resp.all("x-stamped") == ["tollway"]  # response phases still run
    deadline = time.monotonic() + 5
    while "store unreachable" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    assert f"plugin {Waits.name} failed" in caplog.text
    assert "store unreachable" in caplog.text
