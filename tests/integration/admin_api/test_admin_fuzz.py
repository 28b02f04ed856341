"""Fuzz the Admin API from its own OpenAPI document (schemathesis) against a real node:
whatever the input, no answer may be a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from admin_api_support import start_node
from hypothesis import HealthCheck, given, settings
from node_support import Node


@pytest.fixture(scope="module")
def fuzz_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    workdir: Path = tmp_path_factory.mktemp("admin-fuzz")
    doc = {"_format_version": "3.0",
           "services": [{"name": "fz", "host": "h", "routes": [{"name": "fzr",
                                                                "paths": ["/fz"]}]}],
           "consumers": [{"username": "fzc"}], "upstreams": [{"name": "fzu"}]}
    node = start_node(workdir, "sqlite", config=doc)
    yield node
    node.stop()


def test_no_5xx(fuzz_node: Node) -> None:
    """Every operation of /openapi.json, with inputs generated from its schema (paths,
    query, bodies); the 5xx answers are collected and shown together."""
    schema = schemathesis.openapi.from_url(f"{fuzz_node.admin_url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            response = case.call(timeout=15)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} "
                                f"{case.body!r} -> {response.status_code} {response.text}")

        run()
    assert operations > 50
    assert not failures, "\n".join(failures[:20])
