"""Parsing errors name the file and JSON path; `match` picks by priority, order and times."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tollway.mock.expectations import ExpectationError, RecordedRequest, load, match, parse


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "mocks.json"
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


@pytest.mark.parametrize(
    ("document", "json_path", "fragment"),
    [
        (
            [{"httpResponse": {}}, {"httpResponse": {"statusCode": "200"}}],
            "$[1].httpResponse.statusCode",
            "expected an integer",
        ),
        (
            {"httpRequest": {"headers": {"Accept": [1]}}, "httpResponse": {}},
            "$.httpRequest.headers.Accept[0]",
            "expected a string",
        ),
        (
            [{"httpRequest": {"path": "/"}}],
            "$[0]",
            "missing field 'httpResponse'",
        ),
        (
            [{"httpResponse": {"delay": {"timeUnit": "WEEKS", "value": 1}}}],
            "$[0].httpResponse.delay.timeUnit",
            "expected one of",
        ),
        (
            [{"httpResponse": {}, "httpRequest": {"pth": "/"}}],
            "$[0].httpRequest.pth",
            "unknown field",
        ),
        (
            [{"httpForward": {"host": "x"}}],
            "$[0].httpForward",
            "not supported",
        ),
        ("[1, 2]", "$[0]", "expected an object"),
        ("42", "$", "expected an expectation object or a list"),
    ],
)
def test_invalid_file_names_file_and_json_path(
    tmp_path: Path, document: Any, json_path: str, fragment: str
) -> None:
    path = write(tmp_path, document)
    with pytest.raises(ExpectationError) as caught:
        load(path)
    assert caught.value.path == json_path
    assert str(caught.value).startswith(f"{path}: {json_path}: ")
    assert fragment in str(caught.value)


def test_invalid_json_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[{"httpResponse": {}},\n  oops]')
    with pytest.raises(ExpectationError, match=r"mocks\.json: \$: invalid JSON at line 2"):
        load(path)
    with pytest.raises(ExpectationError, match="cannot read file"):
        load(tmp_path / "absent.json")


def request(method: str = "GET", path: str = "/") -> RecordedRequest:
    return RecordedRequest(method=method, path=path)


def test_match_priority_order_and_times() -> None:
    expectations = parse(
        [
            {"id": "a", "httpRequest": {"path": "/x"}, "httpResponse": {}},
            {
                "id": "b",
                "priority": 1,
                "httpRequest": {"path": "/x"},
                "httpResponse": {},
                "times": {"remainingTimes": 1, "unlimited": False},
            },
            {"id": "c", "httpRequest": {"path": "/x"}, "httpResponse": {}},
        ]
    )
    first = match(expectations, request(path="/x"))
    assert first is not None and first.id == "b"
    first.consume()
    second = match(expectations, request(path="/x"))
    assert second is not None and second.id == "a"
    assert match(expectations, request(path="/y")) is None


def test_body_object_with_type_field_is_data_not_a_body_type() -> None:
    [expectation] = parse({"httpResponse": {"body": {"type": "user", "id": 1}}})
    assert json.loads(expectation.response.body) == {"type": "user", "id": 1}
    assert ("Content-Type", "application/json") in expectation.response.headers
