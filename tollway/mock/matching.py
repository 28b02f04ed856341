"""MockServer expectations, the model: what a parsed expectation holds and how a recorded
request is matched against it (`match`). Parsing the file format is `expectations.py`."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


class ExpectationError(ValueError):
    """An invalid expectation document; `path` is a JSON path such as `$[1].httpResponse`."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source = source
        self.path = path
        self.message = message
        super().__init__(f"{source}: {path}: {message}")


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the mock saw it; also what `/mockserver/retrieve` returns."""

    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    # (name, value) pairs in arrival order: duplicates and order matter to gateway tests.
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header_values(self) -> dict[str, list[str]]:
        """Header values keyed by lower-cased name."""
        out: dict[str, list[str]] = {}
        for name, value in self.headers:
            out.setdefault(name.lower(), []).append(value)
        return out

    def to_json(self) -> dict[str, Any]:
        headers: dict[str, list[str]] = {}
        for name, value in self.headers:
            headers.setdefault(name, []).append(value)
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            # MockServer's own name for the same map, so MockServer clients keep working.
            "queryStringParameters": self.query,
            "headers": headers,
            "body": self.body.decode("utf-8", errors="replace"),
        }


# --------------------------------------------------------------------------- matchers


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str, ignore_case: bool) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error:
        return None


def string_matches(expected: str, actual: str, *, ignore_case: bool = False) -> bool:
    """MockServer's string rule: equal, or else `expected` as a regex fully matching `actual`."""
    if expected == actual or (ignore_case and expected.lower() == actual.lower()):
        return True
    pattern = compile_pattern(expected, ignore_case)
    return pattern is not None and pattern.fullmatch(actual) is not None


@dataclass(frozen=True)
class KeyValuesMatcher:
    """Headers or query parameters: name -> expected values."""

    entries: tuple[tuple[str, tuple[str, ...]], ...]
    ignore_case: bool
    matching_key: bool = False  # keyMatchStyle MATCHING_KEY instead of SUB_SET

    def matches(self, actual: dict[str, list[str]]) -> bool:
        for name, expected_values in self.entries:
            keys = [k for k in actual if string_matches(name, k, ignore_case=self.ignore_case)]
            if not keys:
                return False
            values = [v for k in keys for v in actual[k]]
            if not expected_values:
                continue  # only presence was asked for
            if self.matching_key:
                ok = all(any(string_matches(e, v) for e in expected_values) for v in values)
            else:
                ok = all(any(string_matches(e, v) for v in values) for e in expected_values)
            if not ok:
                return False
        return True


def json_contains(expected: Any, actual: Any) -> bool:
    """ONLY_MATCHING_FIELDS: `expected` is a sub-document of `actual`."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and json_contains(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return False
        remaining = list(actual)
        for item in expected:
            # Greedy assignment is enough for mock-sized arrays.
            for i, candidate in enumerate(remaining):
                if json_contains(item, candidate):
                    del remaining[i]
                    break
            else:
                return False
        return True
    return _scalar_equal(expected, actual)


def _scalar_equal(a: Any, b: Any) -> bool:
    # JSON true is not 1, although Python says so.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


@dataclass(frozen=True)
class BodyMatcher:
    kind: str  # STRING, SUBSTRING, REGEX, JSON, JSON_STRICT
    value: Any
    negate: bool = False

    def matches(self, body: bytes) -> bool:
        return self._matches(body) != self.negate

    def _matches(self, body: bytes) -> bool:
        if self.kind in ("JSON", "JSON_STRICT"):
            try:
                actual = json.loads(body)
            except ValueError:
                return False
            if self.kind == "JSON_STRICT":
                return bool(actual == self.value)
            return json_contains(self.value, actual)
        text = body.decode("utf-8", errors="replace")
        if self.kind == "STRING":
            return bool(text == self.value)
        if self.kind == "SUBSTRING":
            return str(self.value) in text
        pattern = compile_pattern(str(self.value), False)
        return pattern is not None and pattern.fullmatch(text) is not None


@dataclass(frozen=True)
class RequestMatcher:
    method: str | None = None
    path: str | None = None
    query: KeyValuesMatcher | None = None
    headers: KeyValuesMatcher | None = None
    body: BodyMatcher | None = None

    def matches(self, request: RecordedRequest) -> bool:
        if self.method is not None and not string_matches(
            self.method, request.method, ignore_case=True
        ):
            return False
        if self.path is not None and not string_matches(self.path, request.path):
            return False
        if self.query is not None and not self.query.matches(request.query):
            return False
        if self.headers is not None and not self.headers.matches(request.header_values()):
            return False
        return self.body is None or self.body.matches(request.body)


@dataclass(frozen=True)
class ResponseSpec:
    status: int = 200
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    delay: float = 0.0  # seconds


@dataclass
class Expectation:
    id: str
    request: RequestMatcher
    response: ResponseSpec
    priority: int = 0
    remaining: int | None = None  # None: unlimited
    expires_at: float | None = None  # time.monotonic() deadline from timeToLive
    raw: dict[str, Any] = field(default_factory=dict)  # as given (plus id), for retrieve/echo

    def is_live(self, now: float | None = None) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.expires_at is None:
            return True
        return (time.monotonic() if now is None else now) < self.expires_at

    def consume(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1


def match(expectations: Sequence[Expectation], request: RecordedRequest) -> Expectation | None:
    """The live expectation that answers `request`: highest priority, then earliest added.

    Pure: the caller decides whether to `consume()` it (the server does).
    """
    now = time.monotonic()
    # sorted() is stable, so equal priorities keep file / insertion order.
    for expectation in sorted(expectations, key=lambda e: -e.priority):
        if expectation.is_live(now) and expectation.request.matches(request):
            return expectation
    return None


# --------------------------------------------------------------------------- parsing
