"""HTTP/1.1 constants shared by the downstream and upstream sides, built once at import."""

from __future__ import annotations

from http import HTTPStatus

from tollway import __version__

VERSION_BYTES = __version__.encode()
SERVER_VALUE = b"tollway/" + VERSION_BYTES
VIA_VALUE = b"1.1 tollway/" + VERSION_BYTES

# Status lines for every known code (uvicorn's STATUS_LINE table); unknown codes are built
# on demand from the upstream's own reason phrase.
STATUS_LINES: dict[int, bytes] = {
    int(s): b"HTTP/1.1 %d %s\r\n" % (int(s), s.phrase.encode()) for s in HTTPStatus
}


def status_line(code: int, reason: bytes = b"") -> bytes:
    line = STATUS_LINES.get(code)
    if line is None:
        line = b"HTTP/1.1 %d %s\r\n" % (code, reason or b"Unknown")
    return line


# Hop-by-hop headers (RFC 9110 §7.6.1) plus the framing headers tollway re-derives itself.
# Lower-case bytes, compared against `name.lower()`.
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"proxy", b"te", b"trailer",
    b"transfer-encoding", b"upgrade", b"proxy-authenticate",
})

# Request headers tollway replaces on the way upstream (§2.8): it derives its own values,
# taking the client's only from trusted peers.
REQUEST_REPLACED = frozenset({
    b"host", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
    b"x-forwarded-port", b"x-forwarded-path", b"x-forwarded-prefix", b"x-real-ip",
    b"content-length", b"expect",
})

# Response headers from the upstream that tollway re-derives on the way downstream.
RESPONSE_REPLACED = frozenset({b"content-length", b"via", b"server"})

# Reasons reading from a client may be paused; reading resumes when none is left.
PAUSE_PIPELINE = 1  # a pipelined request waits for the one before it
PAUSE_BODY = 2  # request body buffered while no upstream connection takes it yet
PAUSE_UPSTREAM = 4  # the upstream's write buffer is full (backpressure)

# Methods whose request may be sent again after its bytes reached an upstream (RFC 9110
# §9.2.2); nginx's proxy_next_upstream never re-sends POST, PATCH or LOCK.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
