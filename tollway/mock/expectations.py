"""MockServer expectations: parsing, with errors that carry a JSON path (the model and the
matching of recorded requests are in `matching.py`, re-exported here).

The accepted format is MockServer's `MOCKSERVER_INITIALIZATION_JSON_PATH` file: a list of
expectations or a single one. The supported subset, and where it departs from MockServer:

* `httpRequest`: `method`, `path`, `queryStringParameters`, `headers`, `body`. Every string
  matches when it is equal to the actual value, or else when it is a regex that *fully* matches
  it (MockServer's rule: a value is tried as a regex when it is not an exact match; a value that
  is not a valid regex simply does not match). Header names are case-insensitive; query names
  are not. Multi-value maps use MockServer's default `keyMatchStyle` `SUB_SET` (every expected
  value must match some actual value); `"keyMatchStyle": "MATCHING_KEY"` is honoured too.
  MockServer's `!value` negation and `?name` optional keys are not supported.
* request `body`: a string (exact), `{"type": "STRING", "string", "subString"}`,
  `{"type": "REGEX", "regex"}`, `{"type": "JSON", "json", "matchType"}` or a bare JSON
  object/array. JSON matching defaults to `ONLY_MATCHING_FIELDS`: objects may have extra fields,
  array order is ignored and extra array items are allowed; `STRICT` is plain equality.
  `"not": true` inverts a body matcher.
* `httpResponse`: `statusCode` (default 200), `reasonPhrase` (accepted but not sent: ASGI has
  no field for it), `headers`, `body` (string; `STRING`/`JSON`/`XML`/`BINARY` typed bodies; a
  bare JSON object/array is serialised with `Content-Type: application/json` unless given),
  `delay`. Framing headers (`Content-Length`, `Transfer-Encoding`) are always computed.
* `times` (absent = unlimited), `timeToLive`, `priority` (higher first, then file order), `id`.

Anything else is rejected with the JSON path at fault, rather than silently matching more
requests than the author meant.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "BodyMatcher",
    "Expectation",
    "ExpectationError",
    "KeyValuesMatcher",
    "RecordedRequest",
    "RequestMatcher",
    "ResponseSpec",
    "load",
    "match",
    "parse",
    "parse_request_matcher",
]

from tollway.mock.matching import (
    BodyMatcher,
    Expectation,
    ExpectationError,
    KeyValuesMatcher,
    RecordedRequest,
    RequestMatcher,
    ResponseSpec,
    compile_pattern,
    match,
)

_TIME_UNITS = {
    "NANOSECONDS": 1e-9,
    "MICROSECONDS": 1e-6,
    "MILLISECONDS": 1e-3,
    "SECONDS": 1.0,
    "MINUTES": 60.0,
    "HOURS": 3600.0,
    "DAYS": 86400.0,
}
_OTHER_ACTIONS = {
    "httpForward",
    "httpForwardTemplate",
    "httpForwardClassCallback",
    "httpForwardObjectCallback",
    "httpOverrideForwardedRequest",
    "httpResponseTemplate",
    "httpResponseClassCallback",
    "httpResponseObjectCallback",
    "httpError",
    "httpSseResponse",
    "httpWebSocketResponse",
}
_BODY_TYPES = {
    "STRING",
    "JSON",
    "REGEX",
    "XML",
    "BINARY",
    "JSON_SCHEMA",
    "JSON_PATH",
    "XML_SCHEMA",
    "XPATH",
    "PARAMETERS",
}
_FRAMING_HEADERS = {"content-length", "transfer-encoding"}


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> ExpectationError:
        return ExpectationError(self.source, path, message)

    def obj(self, value: Any, path: str, allowed: Iterable[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {_kind(value)}")
        allowed = set(allowed)
        for key in value:
            if key not in allowed:
                expected = ", ".join(sorted(allowed))
                raise self.fail(f"{path}.{key}", f"unknown field (expected one of: {expected})")
        return value

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {_kind(value)}")
        return value

    def integer(self, value: Any, path: str, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, got {_kind(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(path, f"must be at least {minimum}")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {_kind(value)}")
        return value

    def duration(self, value: Any, path: str, amount_key: str) -> float:
        spec = self.obj(value, path, {"timeUnit", amount_key, "unlimited"})
        unit = self.string(spec.get("timeUnit", "MILLISECONDS"), f"{path}.timeUnit")
        if unit not in _TIME_UNITS:
            raise self.fail(f"{path}.timeUnit", f"expected one of {', '.join(_TIME_UNITS)}")
        amount = spec.get(amount_key, 0)
        if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
            raise self.fail(f"{path}.{amount_key}", "expected a non-negative number")
        return float(amount) * _TIME_UNITS[unit]

    def multimap(self, value: Any, path: str) -> tuple[list[tuple[str, tuple[str, ...]]], str]:
        """Both MockServer shapes: {name: [values]} and [{"name", "values"}]."""
        entries: list[tuple[str, tuple[str, ...]]] = []
        style = "SUB_SET"
        if isinstance(value, dict):
            for name, values in value.items():
                if name == "keyMatchStyle":
                    style = self.string(values, f"{path}.keyMatchStyle")
                    if style not in ("SUB_SET", "MATCHING_KEY"):
                        raise self.fail(f"{path}.keyMatchStyle", "expected SUB_SET or MATCHING_KEY")
                    continue
                entries.append((name, self.values(values, f"{path}.{name}")))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                item_path = f"{path}[{i}]"
                spec = self.obj(item, item_path, {"name", "values", "value"})
                if "name" not in spec:
                    raise self.fail(item_path, "missing field 'name'")
                name = self.string(spec["name"], f"{item_path}.name")
                raw = spec.get("values", spec.get("value", []))
                entries.append((name, self.values(raw, f"{item_path}.values")))
        else:
            raise self.fail(path, f"expected an object or a list, got {_kind(value)}")
        return entries, style

    def values(self, value: Any, path: str) -> tuple[str, ...]:
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list of strings, got {_kind(value)}")
        return tuple(self.string(v, f"{path}[{i}]") for i, v in enumerate(value))

    # -- expectation

    def expectation(self, value: Any, path: str) -> Expectation:
        keys = {"id", "priority", "httpRequest", "httpResponse", "times", "timeToLive"}
        if isinstance(value, dict):
            for action in _OTHER_ACTIONS & value.keys():
                raise self.fail(
                    f"{path}.{action}", "not supported by tollway mock (only httpResponse)"
                )
        spec = self.obj(value, path, keys)
        if "httpResponse" not in spec:
            raise self.fail(path, "missing field 'httpResponse'")
        ident = self.string(spec.get("id", str(uuid.uuid4())), f"{path}.id")
        priority = self.integer(spec.get("priority", 0), f"{path}.priority")
        request = self.request(spec.get("httpRequest", {}), f"{path}.httpRequest")
        response = self.response(spec["httpResponse"], f"{path}.httpResponse")

        remaining: int | None = None
        if "times" in spec:
            times = self.obj(spec["times"], f"{path}.times", {"remainingTimes", "unlimited"})
            unlimited = self.boolean(
                times.get("unlimited", "remainingTimes" not in times), f"{path}.times.unlimited"
            )
            if not unlimited:
                remaining = self.integer(
                    times.get("remainingTimes", 0), f"{path}.times.remainingTimes", minimum=0
                )
        expires_at: float | None = None
        if "timeToLive" in spec:
            ttl_path = f"{path}.timeToLive"
            ttl = spec["timeToLive"]
            unlimited_ttl = isinstance(ttl, dict) and ttl.get("unlimited", "timeToLive" not in ttl)
            seconds = self.duration(ttl, ttl_path, "timeToLive")
            if not self.boolean(unlimited_ttl, f"{ttl_path}.unlimited"):
                expires_at = time.monotonic() + seconds
        return Expectation(
            id=ident,
            request=request,
            response=response,
            priority=priority,
            remaining=remaining,
            expires_at=expires_at,
            raw={**spec, "id": ident},
        )

    def request(self, value: Any, path: str) -> RequestMatcher:
        spec = self.obj(value, path, {"method", "path", "queryStringParameters", "headers", "body"})
        method = path_value = None
        if "method" in spec:
            method = self.string(spec["method"], f"{path}.method")
        if "path" in spec:
            path_value = self.string(spec["path"], f"{path}.path")
        query = headers = None
        if "queryStringParameters" in spec:
            entries, style = self.multimap(
                spec["queryStringParameters"], f"{path}.queryStringParameters"
            )
            query = KeyValuesMatcher(tuple(entries), False, style == "MATCHING_KEY")
        if "headers" in spec:
            entries, style = self.multimap(spec["headers"], f"{path}.headers")
            headers = KeyValuesMatcher(tuple(entries), True, style == "MATCHING_KEY")
        body = self.request_body(spec["body"], f"{path}.body") if "body" in spec else None
        return RequestMatcher(method, path_value, query, headers, body)

    def request_body(self, value: Any, path: str) -> BodyMatcher:
        if isinstance(value, str):
            return BodyMatcher("STRING", value)
        typed = _body_type(value)
        if typed is None:
            if isinstance(value, dict | list):
                return BodyMatcher("JSON", value)
            raise self.fail(path, f"expected a string or an object, got {_kind(value)}")
        negate_key = {"type", "not", "contentType", "charset"}
        if typed == "STRING":
            spec = self.obj(value, path, negate_key | {"string", "subString"})
            text = self.string(spec.get("string", ""), f"{path}.string")
            sub = self.boolean(spec.get("subString", False), f"{path}.subString")
            kind, matched = ("SUBSTRING" if sub else "STRING"), text
        elif typed == "REGEX":
            spec = self.obj(value, path, negate_key | {"regex"})
            matched = self.string(spec.get("regex", ""), f"{path}.regex")
            if compile_pattern(matched, False) is None:
                raise self.fail(f"{path}.regex", "not a valid regular expression")
            kind = "REGEX"
        elif typed == "JSON":
            spec = self.obj(value, path, negate_key | {"json", "matchType"})
            if "json" not in spec:
                raise self.fail(path, "missing field 'json'")
            matched = self.json_value(spec["json"], f"{path}.json")
            match_type = self.string(
                spec.get("matchType", "ONLY_MATCHING_FIELDS"), f"{path}.matchType"
            )
            if match_type not in ("ONLY_MATCHING_FIELDS", "STRICT"):
                raise self.fail(f"{path}.matchType", "expected ONLY_MATCHING_FIELDS or STRICT")
            kind = "JSON_STRICT" if match_type == "STRICT" else "JSON"
        else:
            raise self.fail(f"{path}.type", f"body type {typed} is not supported by tollway mock")
        negate = self.boolean(spec.get("not", False), f"{path}.not")
        return BodyMatcher(kind, matched, negate)

    def json_value(self, value: Any, path: str) -> Any:
        # MockServer accepts the JSON either inline or as a string holding JSON.
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise self.fail(path, f"string is not valid JSON: {exc}") from None
        return value

    def response(self, value: Any, path: str) -> ResponseSpec:
        spec = self.obj(value, path, {"statusCode", "reasonPhrase", "headers", "body", "delay"})
        status = self.integer(spec.get("statusCode", 200), f"{path}.statusCode", minimum=100)
        if status > 999:
            raise self.fail(f"{path}.statusCode", "must be a three-digit status code")
        reason = None
        if "reasonPhrase" in spec:
            reason = self.string(spec["reasonPhrase"], f"{path}.reasonPhrase")
        headers: list[tuple[str, str]] = []
        if "headers" in spec:
            entries, _ = self.multimap(spec["headers"], f"{path}.headers")
            headers = [
                (name, v)
                for name, vs in entries
                if name.lower() not in _FRAMING_HEADERS
                for v in vs
            ]
        body, content_type = self.response_body(spec.get("body"), f"{path}.body")
        if content_type and not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", content_type))
        delay = self.duration(spec["delay"], f"{path}.delay", "value") if "delay" in spec else 0.0
        return ResponseSpec(status, reason, tuple(headers), body, delay)

    def response_body(self, value: Any, path: str) -> tuple[bytes, str | None]:
        """The body bytes and the Content-Type to add when the expectation gives none."""
        if value is None:
            return b"", None
        if isinstance(value, str):
            return value.encode(), None
        typed = _body_type(value)
        if typed is None:
            if isinstance(value, dict | list):
                return json.dumps(value).encode(), "application/json"
            raise self.fail(path, f"expected a string or an object, got {_kind(value)}")
        common = {"type", "contentType", "charset", "not"}
        if typed == "STRING":
            spec = self.obj(value, path, common | {"string", "subString"})
            text = self.string(spec.get("string", ""), f"{path}.string")
            return text.encode(), self.content_type(spec, path, None)
        if typed == "JSON":
            spec = self.obj(value, path, common | {"json", "matchType"})
            raw = spec.get("json")
            text = raw if isinstance(raw, str) else json.dumps(raw)
            return text.encode(), self.content_type(spec, path, "application/json")
        if typed == "XML":
            spec = self.obj(value, path, common | {"xml"})
            text = self.string(spec.get("xml", ""), f"{path}.xml")
            return text.encode(), self.content_type(spec, path, "application/xml")
        if typed == "BINARY":
            spec = self.obj(value, path, common | {"base64Bytes"})
            encoded = self.string(spec.get("base64Bytes", ""), f"{path}.base64Bytes")
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise self.fail(f"{path}.base64Bytes", "not valid base64") from None
            return data, self.content_type(spec, path, "application/octet-stream")
        raise self.fail(f"{path}.type", f"response body type {typed} is not supported")

    def content_type(self, spec: dict[str, Any], path: str, default: str | None) -> str | None:
        if "contentType" in spec:
            return self.string(spec["contentType"], f"{path}.contentType")
        return default


def _body_type(value: Any) -> str | None:
    """The MockServer body type of a typed body object, or None for plain JSON data.

    Only known type names count, so a JSON payload that happens to have a `type` field
    (`{"type": "user"}`) is still treated as data.
    """
    if isinstance(value, dict):
        kind = value.get("type")
        if isinstance(kind, str) and kind in _BODY_TYPES:
            return kind
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def parse(document: Any, source: str = "<expectations>") -> list[Expectation]:
    """Expectations from an already-decoded JSON document (a list or a single object)."""
    parser = _Parser(source)
    if isinstance(document, list):
        return [parser.expectation(item, f"$[{i}]") for i, item in enumerate(document)]
    if isinstance(document, dict):
        return [parser.expectation(document, "$")]
    raise parser.fail(
        "$", f"expected an expectation object or a list of them, got {_kind(document)}"
    )


def parse_request_matcher(document: Any, source: str = "<request matcher>") -> RequestMatcher:
    """A bare `httpRequest` object, as `/mockserver/retrieve` and `/clear` take for filters."""
    return _Parser(source).request(document, "$")


def load(path: str | Path) -> list[Expectation]:
    """Read and validate one expectation file; raises ExpectationError naming file and path."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ExpectationError(source, "$", f"cannot read file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ExpectationError(source, "$", "file is not UTF-8 text") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExpectationError(
            source, "$", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    return parse(document, source)
