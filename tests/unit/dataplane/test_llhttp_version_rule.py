"""What Exchange.__init__ relies on to skip httptools' get_http_version (a str.format per
call) for the usual request: llhttp accepts HTTP 0.9, 1.0, 1.1 and 2.0 only, and a request
it calls keep-alive without a Connection or Proxy-Connection header is HTTP/1.1. A parser
upgrade that changes either fails here, not in a client's framing."""

from __future__ import annotations

import itertools

import httptools
import pytest

HEADERS = [b"", b"Connection: keep-alive\r\n", b"Connection: close\r\n",
           b"Connection: upgrade\r\nUpgrade: websocket\r\n", b"Proxy-Connection: keep-alive\r\n",
           b"Proxy-Connection: close\r\n", b"Keep-Alive: timeout=5\r\n",
           b"CONNECTION: Keep-Alive\r\n", b"Content-Length: 0\r\n"]


class Seen:
    parser: httptools.HttpRequestParser
    got: tuple[str, bool] | None = None

    def on_headers_complete(self) -> None:
        self.got = (self.parser.get_http_version(), self.parser.should_keep_alive())


def parse(version: bytes, headers: bytes) -> tuple[str, bool] | None:
    seen = Seen()
    seen.parser = httptools.HttpRequestParser(seen)
    try:
        seen.parser.feed_data(b"GET / HTTP/" + version + b"\r\nHost: h\r\n" + headers + b"\r\n")
    except httptools.HttpParserUpgrade:
        pass
    except httptools.HttpParserError:
        return None
    return seen.got


def test_only_four_versions_are_accepted() -> None:
    accepted = {f"{a}.{b}" for a, b in itertools.product(range(4), range(10))
                if parse(f"{a}.{b}".encode(), b"") is not None}
    assert accepted == {"0.9", "1.0", "1.1", "2.0"}


@pytest.mark.parametrize("version", [b"0.9", b"1.0", b"1.1", b"2.0"])
@pytest.mark.parametrize("headers", HEADERS)
def test_keep_alive_without_connection_headers_is_http11(version: bytes, headers: bytes) -> None:
    got = parse(version, headers)
    assert got is not None
    named = b"connection:" in headers.lower()  # Connection or Proxy-Connection
    if got[1] and not named:
        assert got[0] == "1.1"
    assert got[0] == version.decode()
