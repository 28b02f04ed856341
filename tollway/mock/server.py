"""The mock upstream: a Starlette app answering from MockServer expectations.

Besides the expectations it serves a subset of MockServer's REST API (all `PUT`):

* `/mockserver/expectation` — add expectations (list or object) at run time; an existing `id`
  is replaced. 201 with the stored expectations, 400 with the error text when invalid.
* `/mockserver/clear?type=ALL|LOG|EXPECTATIONS` — without a body, clear everything of that
  type; with `{"id": ...}` remove that expectation; with an `httpRequest`-shaped body remove
  recorded requests matching it and expectations whose `httpRequest` equals it.
* `/mockserver/reset` — drop every expectation (file ones included, as MockServer does) and log.
* `/mockserver/status` — 200 `{"ports": [port]}`; `run-local` polls it to know we are up.
* `/mockserver/retrieve?type=REQUESTS|ACTIVE_EXPECTATIONS` — recorded requests (oldest first,
  each `method`, `path`, `query`, `headers`, `body`) or the live expectations, optionally
  filtered by an `httpRequest`-shaped body. Gateway tests use it to see what the upstream got.

Unmatched requests get MockServer's answer: 404 with an empty body. Control requests are not
recorded. Header names are recorded as uvicorn hands them over, i.e. lower-cased.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tollway.mock.expectations import (
    Expectation,
    ExpectationError,
    RecordedRequest,
    RequestMatcher,
    match,
    parse,
    parse_request_matcher,
)

__all__ = ["BackgroundMock", "MockState", "create_app", "serve"]

# Bounded so a long `make run` session cannot grow without limit; MockServer caps its log too.
MAX_LOG_ENTRIES = 10_000
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"]


class MockState:
    """Expectations and the request log of one mock; one event loop owns it, so no locks."""

    def __init__(self, expectations: Iterable[Expectation] = ()) -> None:
        self.expectations: list[Expectation] = list(expectations)
        self.log: deque[RecordedRequest] = deque(maxlen=MAX_LOG_ENTRIES)

    def add(self, expectations: Iterable[Expectation]) -> None:
        for new in expectations:
            for i, old in enumerate(self.expectations):
                if old.id == new.id:
                    self.expectations[i] = new
                    break
            else:
                self.expectations.append(new)

    def answer(self, request: RecordedRequest) -> Expectation | None:
        self.log.append(request)
        expectation = match(self.expectations, request)
        if expectation is not None:
            expectation.consume()
            if not expectation.is_live():
                # Exhausted expectations disappear, as in MockServer's retrieve output.
                self.expectations.remove(expectation)
        return expectation

    def reset(self) -> None:
        self.expectations.clear()
        self.log.clear()


def _record(request: Request, body: bytes) -> RecordedRequest:
    query: dict[str, list[str]] = {}
    raw_query = request.scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query.setdefault(name, []).append(value)
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]]
    return RecordedRequest(request.method, request.scope["path"], query, headers, body)


def _filter(body: bytes) -> tuple[RequestMatcher | None, Any]:
    """The optional request-matcher body of retrieve/clear (raises ExpectationError)."""
    if not body.strip():
        return None, None
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise ExpectationError("request body", "$", f"invalid JSON: {exc}") from None
    if isinstance(document, dict) and set(document) == {"id"}:
        return None, document
    if isinstance(document, dict) and "httpRequest" in document:
        document = document["httpRequest"]
    return parse_request_matcher(document, "request body"), document


def create_app(expectations: Iterable[Expectation] = ()) -> Starlette:
    """The ASGI app; `app.state.mock` is its MockState (tests may inspect it directly)."""
    state = MockState(expectations)

    async def control(request: Request, body: bytes) -> Response | None:
        action = request.scope["path"][len("/mockserver/") :]
        kind = request.query_params.get("type", "").upper()
        try:
            if action == "expectation":
                try:
                    document = json.loads(body)
                except ValueError as exc:
                    raise ExpectationError("request body", "$", f"invalid JSON: {exc}") from None
                added = parse(document, "request body")
                state.add(added)
                return JSONResponse([e.raw for e in added], status_code=201)
            if action == "status":
                port = request.scope.get("server", (None, None))[1]
                return JSONResponse({"ports": [port]})
            if action == "reset":
                state.reset()
                return Response(status_code=200)
            if action == "retrieve":
                matcher, _ = _filter(body)
                if kind in ("", "REQUESTS"):
                    entries = [r for r in state.log if matcher is None or matcher.matches(r)]
                    return JSONResponse([r.to_json() for r in entries])
                if kind == "ACTIVE_EXPECTATIONS":
                    live = [e.raw for e in state.expectations if e.is_live()]
                    return JSONResponse(live)
                return PlainTextResponse(f"retrieve type {kind} is not supported", 400)
            if action == "clear":
                return _clear(state, kind or "ALL", body)
        except ExpectationError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        return None  # not a control path we know: treat as an ordinary request

    async def handle(request: Request) -> Response:
        body = await request.body()
        if request.method == "PUT" and request.scope["path"].startswith("/mockserver/"):
            response = await control(request, body)
            if response is not None:
                return response
        expectation = state.answer(_record(request, body))
        if expectation is None:
            return Response(status_code=404)
        spec = expectation.response
        if spec.delay:
            await asyncio.sleep(spec.delay)
        response = Response(content=spec.body, status_code=spec.status)
        # Appended to raw_headers (not passed as a mapping) so repeated names survive.
        response.raw_headers.extend(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in spec.headers
        )
        return response

    app = Starlette(routes=[Route("/{path:path}", handle, methods=ALL_METHODS)])
    app.state.mock = state
    return app


def _clear(state: MockState, kind: str, body: bytes) -> Response:
    if kind not in ("ALL", "LOG", "EXPECTATIONS"):
        return PlainTextResponse(f"clear type {kind} is not supported", 400)
    matcher, document = _filter(body)
    if kind in ("ALL", "LOG"):
        if document is None:
            state.log.clear()
        elif matcher is not None:
            kept = [r for r in state.log if not matcher.matches(r)]
            state.log.clear()
            state.log.extend(kept)
    if kind in ("ALL", "EXPECTATIONS"):
        if document is None:
            state.expectations.clear()
        elif matcher is None:
            state.expectations[:] = [e for e in state.expectations if e.id != document["id"]]
        else:
            state.expectations[:] = [
                e for e in state.expectations if e.raw.get("httpRequest", {}) != document
            ]
    return Response(status_code=200)


def _config(app: Starlette, **kwargs: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        # No `server: uvicorn` / `date`: gateway tests compare what the upstream sent.
        server_header=False,
        date_header=False,
        **kwargs,
    )


def serve(expectations: Iterable[Expectation], host: str, port: int) -> None:
    """Run the mock in the foreground until SIGINT/SIGTERM (what `tollway mock` does)."""
    uvicorn.Server(_config(create_app(expectations), host=host, port=port)).run()


class BackgroundMock:
    """The mock on a real socket in a daemon thread, for tests.

        with BackgroundMock(expectations) as mock:
            httpx.get(mock.url + "/api/users")

    Port 0 (the default) picks a free port; `mock.port` / `mock.url` tell which.
    """

    def __init__(
        self, expectations: Iterable[Expectation] = (), host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.app = create_app(expectations)
        self.state: MockState = self.app.state.mock
        self.host = host
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self._server = uvicorn.Server(_config(self.app))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> BackgroundMock:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.01)):
            if self._server.started:
                return self
            if not self._thread.is_alive():
                break
            deadline.wait(0.01)
        raise RuntimeError(f"mock server on {self.url} did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> BackgroundMock:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
