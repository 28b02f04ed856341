"""The generated phase runners (plugins/runners.py) behave as the generic loops: order,
stopping when a plugin answers, suspending on an awaitable, naming a plugin that raised."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tollway.plugins.runners import access_runner, log_runner, response_runner, source_of


class Req:
    def __init__(self) -> None:
        self.done = False
        self.calls: list[str] = []
        self.failed: list[str] = []
        self.awaiting: list[tuple[Any, int]] = []

    def _plugin_failed(self, name: str) -> None:
        self.failed.append(name)

    def _await_access(self, pending: Any, resume_at: int) -> None:
        self.awaiting.append((pending, resume_at))


def step(name: str, result: Any = None, answer: bool = False, fail: bool = False) -> Any:
    def fn(req: Req) -> Any:
        req.calls.append(name)
        if fail:
            raise RuntimeError(name)
        if answer:
            req.done = True
        return result
    return fn


def test_access_runs_in_order_and_goes_on() -> None:
    run = access_runner([step("a"), step("b"), step("c")], ["a", "b", "c"])
    req = Req()
    assert run(req) is True
    assert req.calls == ["a", "b", "c"] and not req.failed and not req.awaiting
    assert "def run_access(req):" in source_of(run)


def test_access_stops_when_a_plugin_answers() -> None:
    run = access_runner([step("a"), step("b", answer=True), step("c")], ["a", "b", "c"])
    req = Req()
    assert run(req) is False
    assert req.calls == ["a", "b"]


def test_access_suspends_on_an_awaitable_and_says_where_to_resume() -> None:
    pending = object()
    run = access_runner([step("a"), step("b", result=pending), step("c")], ["a", "b", "c"])
    req = Req()
    assert run(req) is False
    assert req.calls == ["a", "b"] and req.awaiting == [(pending, 2)]


def test_access_names_the_plugin_that_raised() -> None:
    run = access_runner([step("a"), step("b", fail=True), step("c")], ["a", "bee", "c"])
    req = Req()
    assert run(req) is False
    assert req.calls == ["a", "b"] and req.failed == ["bee"]


@pytest.mark.parametrize("make,phase", [(response_runner, "response"), (log_runner, "log")])
def test_response_and_log_run_every_plugin_and_log_failures(
        make: Any, phase: str, caplog: pytest.LogCaptureFixture) -> None:
    run = make([step("a", fail=True), step("b"), step("c", fail=True)], ["a", "b", "c"])
    req = Req()
    with caplog.at_level(logging.ERROR, logger="tollway.proxy"):
        assert run(req) is None
    assert req.calls == ["a", "b", "c"]
    assert [r.getMessage() for r in caplog.records] == [
        f"plugin a failed in the {phase} phase", f"plugin c failed in the {phase} phase"]
    assert all(r.exc_info for r in caplog.records)


def test_chains_of_one_shape_share_the_code_not_the_plugins() -> None:
    # thousands of routes must not compile thousands of sources: one code per shape
    first = access_runner([step("a"), step("b")], ["a", "b"])
    second = access_runner([step("x"), step("y")], ["x", "y"])
    assert first.__code__ is second.__code__  # type: ignore[attr-defined]
    r1, r2 = Req(), Req()
    assert first(r1) is True and second(r2) is True
    assert r1.calls == ["a", "b"] and r2.calls == ["x", "y"]


def test_routes_sharing_plugin_instances_share_runners() -> None:
    # a config of thousands of routes makes one runner per distinct chain, not per route
    import yaml

    from tollway.config.loader import load_text
    from tollway.plugins import registry
    from tollway.plugins.chain import build_chains

    registry.configure("bundled")
    doc = {"_format_version": "3.0", "services": [
        {"name": "s", "url": "http://127.0.0.1:1",
         "routes": [{"name": f"r{i}", "paths": [f"/p{i}"]} for i in range(3)],
         "plugins": [{"name": "correlation-id", "config": {"echo_downstream": True}}]},
        {"name": "t", "url": "http://127.0.0.1:1",
         "routes": [{"name": "other", "paths": ["/other"]}]}],
        "plugins": [{"name": "prometheus", "config": {}}]}
    config = load_text(yaml.safe_dump(doc))
    chains, _ = build_chains(config)
    by_name = {r["name"]: chains[r["id"]] for r in config.entities["routes"]}
    a, b, c, other = by_name["r0"], by_name["r1"], by_name["r2"], by_name["other"]
    assert a.access_run is b.access_run is c.access_run
    assert a.log_run is b.log_run and a.response_run is c.response_run
    # the same log-phase instances (the global prometheus): the same log runner too
    assert other.log_run is a.log_run and "f0(req)" in source_of(a.log_run)
    # no correlation-id on the other route: its response phase is not a's
    assert not other.response and "f0(req)" in source_of(a.response_run)
    assert other.response_run is not a.response_run
