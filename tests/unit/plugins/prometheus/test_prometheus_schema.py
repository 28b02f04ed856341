"""prometheus `config`: Kong's fields, tollway's defaults (DECISIONS.md #2), Kong's messages."""

from __future__ import annotations

from typing import Any

import pytest

from tollway.plugins import registry
from tollway.plugins.prometheus.handler import PrometheusPlugin

DEFAULTS = {
    "per_consumer": False,
    "status_code_metrics": True,
    "latency_metrics": True,
    "bandwidth_metrics": True,
    "upstream_health_metrics": False,
}


def test_registered_with_kong_priority() -> None:
    assert registry.get("prometheus") is PrometheusPlugin
    assert PrometheusPlugin.priority == 13


@pytest.mark.parametrize(("config", "expected"), [
    (None, DEFAULTS),
    ({}, DEFAULTS),
    ({"per_consumer": True}, {**DEFAULTS, "per_consumer": True}),
    ({"status_code_metrics": False, "latency_metrics": False, "bandwidth_metrics": False,
      "upstream_health_metrics": True},
     {**DEFAULTS, "status_code_metrics": False, "latency_metrics": False,
      "bandwidth_metrics": False, "upstream_health_metrics": True}),
])
def test_defaults(config: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    normalised, errors = registry.validate_plugin_config("prometheus", config)
    assert errors == {}
    assert normalised == expected


@pytest.mark.parametrize(("config", "errors"), [
    ({"per_consumer": "yes"}, {"per_consumer": "expected a boolean"}),
    ({"status_code_metrics": 1}, {"status_code_metrics": "expected a boolean"}),
    ({"latency_metrics": "true", "bandwidth_metrics": []},
     {"latency_metrics": "expected a boolean", "bandwidth_metrics": "expected a boolean"}),
    ({"upstream_health_metrics": {}}, {"upstream_health_metrics": "expected a boolean"}),
    ({"prefix": "kong"}, {"prefix": "unknown field"}),
])
def test_errors(config: dict[str, Any], errors: dict[str, Any]) -> None:
    _, got = registry.validate_plugin_config("prometheus", config)
    assert got == {"config": errors}
