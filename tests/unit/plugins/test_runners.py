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
