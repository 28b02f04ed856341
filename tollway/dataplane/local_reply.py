"""Responses tollway produces itself: Kong's error bodies, byte for byte (reference §2.12).

Two families, as in Kong:
* `kong.response.error` replies (404 no route, 503 no service, 426, ...) negotiate the format
  from `Accept` and default to JSON;
* nginx-generated errors (502 bad upstream, 504 timeout, 400 bad request, 413, ...) negotiate
  from `Accept`, then the request's `Content-Type`, and default to text/plain.
"""

from __future__ import annotations

from tollway.dataplane.http import SERVER_VALUE, status_line

JSON = b"application/json; charset=utf-8"
TEXT = b"text/plain; charset=utf-8"
HTML = b"text/html; charset=utf-8"
XML = b"application/xml; charset=utf-8"

MESSAGES: dict[int, str] = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 408: "Request timeout", 409: "Conflict",
    411: "Length required", 412: "Precondition failed", 413: "Payload too large",
    414: "URI too long", 415: "Unsupported media type", 417: "Expectation failed",
    426: "Upgrade required", 429: "Too many requests",
    431: "Request header or cookie too large",
    494: "Request header or cookie too large",
    500: "An unexpected error occurred",
    502: "An invalid response was received from the upstream server",
    503: "The upstream server is currently unavailable",
    504: "The upstream server is timing out",
}

NO_ROUTE = "no Route matched with those values"
NO_SERVICE = "no Service found with those values"
NO_PEER = "failure to get a peer from the ring-balancer"
NAME_RESOLUTION = "name resolution failed"
USE_HTTPS = "Please use HTTPS protocol"


def default_message(status: int) -> str:
    return MESSAGES.get(status) or f"The upstream server responded with {status}"


_TYPES = (
    (b"application/json", JSON), (b"text/html", HTML), (b"application/xml", XML),
    (b"text/plain", TEXT), (b"text/*", TEXT), (b"application/*", JSON),
)


# negotiate's answers by (Accept, fallback): clients send a handful of Accept values, and a
# flood of 401s or 429s should not parse the same one each time
_NEGOTIATED: dict[tuple[bytes, bytes], bytes] = {}
_NEGOTIATED_MAX = 256


def negotiate(accept: bytes | None, fallback: bytes) -> bytes:
    """The content type to answer in: the acceptable type with the highest q, in Kong's
    preference order on ties; `fallback` when nothing recognisable is asked for."""
    if not accept:
        return fallback
    key = (accept, fallback)
    known = _NEGOTIATED.get(key)
    if known is None:
        known = _negotiate(accept, fallback)
        if len(_NEGOTIATED) >= _NEGOTIATED_MAX:
            _NEGOTIATED.clear()
        _NEGOTIATED[key] = known
    return known


def _negotiate(accept: bytes, fallback: bytes) -> bytes:
    best, best_q = fallback, -1.0
    for item in accept.split(b","):
        media, *params = (p.strip() for p in item.split(b";"))
        q = 1.0
        for p in params:
            if p[:2].lower() == b"q=":
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        media = media.lower()
        for prefix, ctype in _TYPES:
            if media == prefix and q > best_q:
                best, best_q = ctype, q
        if media == b"*/*" and q > best_q:
            best, best_q = fallback, q
    return best if best_q > 0 else fallback


def render_body(message: str, request_id: str, ctype: bytes) -> bytes:
    # Kong inserts the message without escaping; so do we, to stay byte-compatible.
    if ctype is JSON:
        return f'{{\n  "message":"{message}",\n  "request_id":"{request_id}"\n}}'.encode()
    if ctype is HTML:
        return (
            "<!doctype html>\n<html>\n  <head>\n"
            '    <meta charset="utf-8">\n    <title>Error</title>\n  </head>\n'
            f"  <body>\n    <h1>Error</h1>\n    <p>{message}.</p>\n"
            f"    <p>request_id: {request_id}</p>\n  </body>\n</html>\n"
        ).encode()
    if ctype is XML:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<error>\n'
            f"  <message>{message}</message>\n  <requestid>{request_id}</requestid>\n</error>\n"
        ).encode()
    return f"{message}\nrequest_id: {request_id}\n".encode()


def build(status: int, ctype: bytes, body: bytes, *, date: bytes, extra: list[bytes],
          keep_alive: bool, head_only: bool = False) -> bytes:
    """A complete response: status line, headers, body. `extra` holds ready header lines."""
    parts = [
        status_line(status), b"Date: ", date, b"\r\nContent-Type: ", ctype,
        b"\r\nContent-Length: ", str(len(body)).encode(), b"\r\n",
        *extra,
        b"" if keep_alive else b"Connection: close\r\n",
        b"\r\n",
    ]
    if not head_only:
        parts.append(body)
    return b"".join(parts)


SERVER_LINE = b"Server: " + SERVER_VALUE + b"\r\n"
