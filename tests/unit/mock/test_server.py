"""The mock on a real socket: matching, priorities, times, delay, control API, examples."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tollway.mock.expectations import load, parse
from tollway.mock.server import BackgroundMock

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "mocks"


@pytest.fixture
def mock_with() -> Iterator[Any]:
    """Start a mock on a free port with the given expectation document; stopped afterwards."""
    started: list[BackgroundMock] = []

    def start(document: Any) -> httpx.Client:
        mock = BackgroundMock(parse(document, "test")).start()
        started.append(mock)
        return httpx.Client(base_url=mock.url, timeout=5)

    yield start
    for mock in started:
        mock.stop()


def ok(body: str) -> dict[str, Any]:
    return {"statusCode": 200, "body": body}


def test_method_and_path(mock_with: Any) -> None:
    client = mock_with(
        [
            {"httpRequest": {"method": "GET", "path": "/a"}, "httpResponse": ok("get a")},
            {"httpRequest": {"method": "POST", "path": "/a"}, "httpResponse": ok("post a")},
        ]
    )
    assert client.get("/a").text == "get a"
    assert client.post("/a").text == "post a"
    assert client.get("/a/b").status_code == 404
    assert client.delete("/a").status_code == 404


def test_unmatched_is_empty_404(mock_with: Any) -> None:
    client = mock_with([])
    response = client.get("/nothing")
    assert response.status_code == 404
    assert response.content == b""


def test_path_regex_when_not_exact(mock_with: Any) -> None:
    client = mock_with({"httpRequest": {"path": "/users/[0-9]+"}, "httpResponse": ok("user")})
    assert client.get("/users/42").text == "user"
    assert client.get("/users/42/x").status_code == 404  # full match, not search
    assert client.get("/users/abc").status_code == 404


def test_query_parameters_both_shapes(mock_with: Any) -> None:
    client = mock_with(
        [
            {
                "httpRequest": {"path": "/q", "queryStringParameters": {"page": ["2"]}},
                "httpResponse": ok("page 2"),
            },
            {
                "httpRequest": {
                    "path": "/q",
                    "queryStringParameters": [{"name": "sort", "values": ["name|email"]}],
                },
                "httpResponse": ok("sorted"),
            },
        ]
    )
    assert client.get("/q", params={"page": "2", "extra": "x"}).text == "page 2"
    assert client.get("/q", params={"sort": "email"}).text == "sorted"
    assert client.get("/q", params={"page": "3"}).status_code == 404
    assert client.get("/q").status_code == 404


def test_headers_case_insensitive_names_and_regex_values(mock_with: Any) -> None:
    client = mock_with(
        {
            "httpRequest": {"path": "/h", "headers": {"authorization": ["Bearer [a-z0-9.]+"]}},
            "httpResponse": ok("authorised"),
        }
    )
    assert client.get("/h", headers={"Authorization": "Bearer abc.123"}).text == "authorised"
    assert client.get("/h", headers={"Authorization": "Basic abc"}).status_code == 404
    assert client.get("/h").status_code == 404


def test_body_matchers(mock_with: Any) -> None:
    client = mock_with(
        [
            {
                "httpRequest": {"path": "/exact", "body": "hello"},
                "httpResponse": ok("exact"),
            },
            {
                "httpRequest": {
                    "path": "/json",
                    "body": {"type": "JSON", "json": {"user": {"name": "ada"}, "tags": ["b"]}},
                },
                "httpResponse": ok("partial json"),
            },
            {
                "httpRequest": {
                    "path": "/strict",
                    "body": {"type": "JSON", "json": '{"a": 1}', "matchType": "STRICT"},
                },
                "httpResponse": ok("strict json"),
            },
            {
                "httpRequest": {
                    "path": "/sub",
                    "body": {"type": "STRING", "string": "needle", "subString": True},
                },
                "httpResponse": ok("substring"),
            },
        ]
    )
    assert client.post("/exact", content=b"hello").text == "exact"
    assert client.post("/exact", content=b"hello!").status_code == 404
    body = {"user": {"name": "ada", "id": 1}, "tags": ["a", "b"], "more": True}
    assert client.post("/json", json=body).text == "partial json"
    assert client.post("/json", json={"user": {"name": "alan"}, "tags": ["b"]}).status_code == 404
    assert client.post("/json", content=b"not json").status_code == 404
    assert client.post("/strict", json={"a": 1}).text == "strict json"
    assert client.post("/strict", json={"a": 1, "b": 2}).status_code == 404
    assert client.post("/sub", content=b"hay needle hay").text == "substring"


def test_priority_then_file_order(mock_with: Any) -> None:
    client = mock_with(
        [
            {"httpRequest": {"path": "/p"}, "httpResponse": ok("first")},
            {"httpRequest": {"path": "/p"}, "httpResponse": ok("second")},
            {"priority": 5, "httpRequest": {"path": "/p"}, "httpResponse": ok("priority")},
            {"httpRequest": {"path": "/o"}, "httpResponse": ok("first")},
            {"httpRequest": {"path": "/o"}, "httpResponse": ok("second")},
        ]
    )
    assert client.get("/p").text == "priority"
    assert client.get("/o").text == "first"


def test_times_then_fall_through(mock_with: Any) -> None:
    client = mock_with(
        [
            {
                "httpRequest": {"path": "/t"},
                "httpResponse": ok("limited"),
                "times": {"remainingTimes": 2, "unlimited": False},
            },
            {"httpRequest": {"path": "/t"}, "httpResponse": ok("fallback")},
        ]
    )
    assert [client.get("/t").text for _ in range(3)] == ["limited", "limited", "fallback"]


def test_response_shapes(mock_with: Any) -> None:
    client = mock_with(
        [
            {
                "httpRequest": {"path": "/obj"},
                "httpResponse": {"statusCode": 201, "body": {"id": 7}},
            },
            {
                "httpRequest": {"path": "/typed"},
                "httpResponse": {
                    "headers": [{"name": "Set-Cookie", "values": ["a=1", "b=2"]}],
                    "body": {"type": "JSON", "json": {"ok": True}},
                },
            },
            {
                "httpRequest": {"path": "/own-type"},
                "httpResponse": {
                    "headers": {"Content-Type": ["application/vnd.x+json"]},
                    "body": {"id": 1},
                },
            },
            {"httpRequest": {"path": "/empty"}, "httpResponse": {}},
        ]
    )
    response = client.get("/obj")
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"id": 7}
    response = client.get("/typed")
    assert response.json() == {"ok": True}
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert client.get("/own-type").headers.get_list("content-type") == ["application/vnd.x+json"]
    response = client.get("/empty")
    assert (response.status_code, response.content) == (200, b"")


def test_delay(mock_with: Any) -> None:
    client = mock_with(
        {
            "httpRequest": {"path": "/slow"},
            "httpResponse": {"body": "late", "delay": {"timeUnit": "MILLISECONDS", "value": 300}},
        }
    )
    started = time.monotonic()
    assert client.get("/slow").text == "late"
    assert time.monotonic() - started >= 0.3


def test_expectation_added_at_run_time(mock_with: Any) -> None:
    client = mock_with([])
    assert client.get("/new").status_code == 404
    response = client.put(
        "/mockserver/expectation",
        json=[{"id": "n", "httpRequest": {"path": "/new"}, "httpResponse": ok("added")}],
    )
    assert response.status_code == 201
    assert response.json()[0]["id"] == "n"
    assert client.get("/new").text == "added"
    # Same id replaces rather than appends.
    client.put("/mockserver/expectation", json={"id": "n", "httpResponse": ok("replaced")})
    assert client.get("/new").text == "replaced"
    bad = client.put("/mockserver/expectation", json={"httpResponse": {"statusCode": "x"}})
    assert bad.status_code == 400
    assert "$.httpResponse.statusCode" in bad.text


def test_status_reset_and_retrieve(mock_with: Any) -> None:
    client = mock_with({"httpRequest": {"path": "/r"}, "httpResponse": ok("r")})
    status = client.put("/mockserver/status")
    assert status.status_code == 200
    assert status.json()["ports"] == [client.base_url.port]

    client.post(
        "/r?a=1&a=2",
        content=b'{"x": 1}',
        headers={"X-Forwarded-For": "10.0.0.1", "X-Forwarded-Proto": "http"},
    )
    client.get("/unmatched")
    log = client.put("/mockserver/retrieve", params={"type": "REQUESTS"}).json()
    assert [(r["method"], r["path"]) for r in log] == [("POST", "/r"), ("GET", "/unmatched")]
    first = log[0]
    assert first["query"] == {"a": ["1", "2"]}
    assert first["headers"]["x-forwarded-for"] == ["10.0.0.1"]
    assert first["headers"]["x-forwarded-proto"] == ["http"]
    assert first["body"] == '{"x": 1}'
    # Control calls are not recorded; a request-matcher body filters.
    filtered = client.put("/mockserver/retrieve", json={"method": "GET"}).json()
    assert [r["path"] for r in filtered] == ["/unmatched"]

    assert client.put("/mockserver/reset").status_code == 200
    assert client.put("/mockserver/retrieve").json() == []
    assert client.get("/r").status_code == 404  # reset drops file expectations too


def test_clear_log_only(mock_with: Any) -> None:
    client = mock_with({"httpRequest": {"path": "/c"}, "httpResponse": ok("c")})
    client.get("/c")
    assert client.put("/mockserver/clear", params={"type": "LOG"}).status_code == 200
    assert client.put("/mockserver/retrieve").json() == []
    assert client.get("/c").text == "c"


@pytest.mark.parametrize(
    ("method", "path", "status", "key"),
    [
        ("GET", "/api/users", 200, "data"),
        ("POST", "/api/users", 201, "id"),
        ("GET", "/api/users/usr_1002", 200, "id"),
    ],
)
def test_user_service_example(method: str, path: str, status: int, key: str) -> None:
    with BackgroundMock(load(EXAMPLES / "user-service.json")) as mock:
        response = httpx.request(method, mock.url + path, json={"name": "x"}, timeout=5)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert key in response.json()


@pytest.mark.parametrize("path", ["/", "/api/orders"])
def test_order_service_example(path: str) -> None:
    # Kong's default strip_path=true sends `/api/orders` to the upstream as `/`.
    with BackgroundMock(load(EXAMPLES / "order-service.json")) as mock:
        listing = httpx.get(mock.url + path, timeout=5)
        created = httpx.post(mock.url + path, json={"sku": "KB-01"}, timeout=5)
        other = httpx.delete(mock.url + path, timeout=5)
    assert listing.status_code == 200
    assert len(listing.json()["data"]) == 2
    assert created.status_code == 201
    assert created.json()["id"].startswith("ord_")
    assert other.status_code == 404
