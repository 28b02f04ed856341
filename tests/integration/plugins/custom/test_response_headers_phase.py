"""The `response_headers` phase and `req.set_response_headers` (docs/plugin-development.md
§4–5) through real sockets: the one-pass response head when every response plugin only sets
headers, and the same result beside a `response` (HeaderList) plugin, in priority order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from dataplane_helpers import (
    Gateway,
    RawClient,
    Request,
    UpConn,
    Upstream,
    response_bytes,
    upstream_thread,
)

from tollway.config.schema import Record
from tollway.plugins import registry
from tollway.plugins.base import (
    HeaderBlock,
    HeaderList,
    HeaderNames,
    Plugin,
    ResponseHeader,
    ResponseItem,
    response_header,
)

UPSTREAM_HEADERS = [("X-A", "upstream"), ("Vary", "Accept"), ("X-Gone", "upstream"),
                    ("Server", "origin")]


async def with_headers(conn: UpConn, req: Request) -> None:
    await conn.send(response_bytes(200, b"ok", UPSTREAM_HEADERS))


class Setter(Plugin):
    """Sets X-A, adds a Vary value, removes X-Gone: entries built once."""

    name = "test-setter"
    priority: ClassVar[int] = 500
    config_schema = Record(fields={})
    entries: ClassVar[list[ResponseHeader]] = [
        response_header(b"X-A", b"plugin"),
        response_header(b"Vary", b"Origin", replace=False),
        response_header(b"X-Gone", None),
    ]

    def response_headers(self, req: Any) -> None:
        req.set_response_headers(self.entries)


class Block(Plugin):
    """A HeaderBlock: X-A set to "block", X-Gone removed, in one serialised item."""

    name = "test-block"
    priority: ClassVar[int] = 450
    config_schema = Record(fields={})
    entries: ClassVar[list[ResponseItem]] = [
        HeaderBlock(frozenset({b"x-a", b"x-gone"}), b"X-A: block\r\n")]

    def response_headers(self, req: Any) -> None:
        req.set_response_headers(self.entries)


class VaryBlock(Plugin):
    """A block that sets X-B and adds Vary: Origin beside the upstream's (HeaderNames.added)."""

    name = "test-vary-block"
    priority: ClassVar[int] = 700
    config_schema = Record(fields={})
    entries: ClassVar[list[ResponseItem]] = [
        HeaderBlock(HeaderNames({b"x-b"}, added=(b"vary",)), b"Vary: Origin\r\nX-B: vary\r\n")]

    def response_headers(self, req: Any) -> None:
        req.set_response_headers(self.entries)


class VarySetter(Plugin):
    """A later block that sets Vary: the earlier block's added Vary line must go."""

    name = "test-vary-setter"
    priority: ClassVar[int] = 300
    config_schema = Record(fields={})
    entries: ClassVar[list[ResponseItem]] = [
        HeaderBlock(frozenset({b"vary"}), b"Vary: *\r\n")]

    def response_headers(self, req: Any) -> None:
        req.set_response_headers(self.entries)


class CtypeBlock(Plugin):
    """A block that sets Content-Type: on a local reply it replaces the reply's own."""

    name = "test-ctype-block"
    priority: ClassVar[int] = 350
    config_schema = Record(fields={})
    entries: ClassVar[list[ResponseItem]] = [
        HeaderBlock(frozenset({b"content-type"}), b"Content-Type: text/x-plugin\r\n")]

    def response_headers(self, req: Any) -> None:
        req.set_response_headers(self.entries)


class Untouched(Plugin):
    """A HeaderList plugin that changes nothing: its presence sends a local reply's
    headers through the general resolution instead of the blocks-as-they-are path."""

    name = "test-untouched"
    priority: ClassVar[int] = 1
    config_schema = Record(fields={})

    def response(self, req: Any, headers: HeaderList) -> None:
        pass


class Reader(Plugin):
    """A HeaderList plugin: reports the X-A value it saw."""

    name = "test-reader"
    priority: ClassVar[int] = 400
    config_schema = Record(fields={})

    def response(self, req: Any, headers: HeaderList) -> None:
        headers.set(b"X-Seen", headers.get(b"X-A") or b"-")


class EarlyReader(Reader):
    name = "test-early-reader"
    priority: ClassVar[int] = 600


@pytest.fixture
def plugins() -> Iterator[None]:
    classes = (Setter, Block, VaryBlock, VarySetter, Reader, EarlyReader, CtypeBlock,
               Untouched)
    for cls in classes:
        registry.register(cls)
    yield
    for cls in classes:
        registry.unregister(cls.name)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with upstream_thread(with_headers, "headers-upstream") as up:
        yield up


@pytest.fixture
def fetch(plugins: None, upstream: Upstream) -> Iterator[Callable[..., Any]]:
    made: list[Any] = []

    def run(names: list[str], path: str = "/", global_names: tuple[str, ...] = ()) -> Any:
        document = {"_format_version": "3.0",
                    "services": [{"name": "svc", "url": upstream.url,
                                  "routes": [{"name": "r", "paths": ["/api"],
                                              "plugins": [{"name": n} for n in names]}]}],
                    "plugins": [{"name": n} for n in global_names]}
        gw = Gateway(document, {})
        client = RawClient(gw.port, 5.0)
        made.extend((client, gw))
        return client.request("GET", path)

    yield run
    for thing in made:
        thing.close()


def test_only_header_setters_write_the_head_in_one_pass(fetch: Callable[..., Any]) -> None:
    resp = fetch(["test-setter"], "/api")
    assert resp.status == 200
    assert resp.all("x-a") == ["plugin"]  # replaced, not added
    assert resp.all("vary") == ["Accept", "Origin"]  # added beside the upstream's
    assert resp.all("x-gone") == []  # removed
    assert resp.all("server") == ["origin"]
    assert resp.text == "ok"


def test_a_headerlist_plugin_after_the_setter_sees_its_headers(
        fetch: Callable[..., Any]) -> None:
    resp = fetch(["test-setter", "test-reader"], "/api")
    assert resp.all("x-seen") == ["plugin"]
    assert resp.all("x-a") == ["plugin"]
    assert resp.all("vary") == ["Accept", "Origin"]
    assert resp.all("x-gone") == []


def test_a_headerlist_plugin_before_the_setter_sees_the_upstreams(
        fetch: Callable[..., Any]) -> None:
    resp = fetch(["test-setter", "test-early-reader"], "/api")
    assert resp.all("x-seen") == ["upstream"]
    assert resp.all("x-a") == ["plugin"]


def test_local_replies_get_the_headers_too(fetch: Callable[..., Any]) -> None:
    resp = fetch([], "/nowhere", global_names=("test-setter",))
    assert resp.status == 404
    assert resp.all("x-a") == ["plugin"]
    assert resp.all("vary") == ["Origin"]


def test_a_block_replaces_and_removes(fetch: Callable[..., Any]) -> None:
    resp = fetch(["test-block"], "/api")
    assert resp.all("x-a") == ["block"]
    assert resp.all("x-gone") == []
    assert resp.all("vary") == ["Accept"]


def test_a_later_block_overrides_an_earlier_set(fetch: Callable[..., Any]) -> None:
    # test-setter (500) runs before test-block (450): the block's X-A wins
    resp = fetch(["test-setter", "test-block"], "/api")
    assert resp.all("x-a") == ["block"]
    assert resp.all("vary") == ["Accept", "Origin"]
    assert resp.all("x-gone") == []


def test_a_headerlist_plugin_sees_a_block(fetch: Callable[..., Any]) -> None:
    resp = fetch(["test-block", "test-reader"], "/api")
    assert resp.all("x-seen") == ["block"]
    assert resp.all("x-a") == ["block"]
    assert resp.all("x-gone") == []


def test_blocks_that_do_not_overlap_keep_every_line(fetch: Callable[..., Any]) -> None:
    # the name-bit check: disjoint blocks (X-B + an added Vary, then X-A + X-Gone) are sent
    # as they are; the added Vary goes beside the upstream's
    resp = fetch(["test-vary-block", "test-block"], "/api")
    assert resp.all("vary") == ["Accept", "Origin"]
    assert resp.all("x-b") == ["vary"]
    assert resp.all("x-a") == ["block"]
    assert resp.all("x-gone") == []


def test_a_later_block_setting_an_added_name_drops_the_added_line(
        fetch: Callable[..., Any]) -> None:
    resp = fetch(["test-vary-block", "test-vary-setter"], "/api")
    assert resp.all("vary") == ["*"]  # neither the upstream's nor the earlier block's
    assert resp.all("x-b") == ["vary"]


def test_an_added_line_beside_a_headerlist_plugin(fetch: Callable[..., Any]) -> None:
    resp = fetch(["test-vary-block", "test-reader"], "/api")
    assert resp.all("vary") == ["Accept", "Origin"]
    assert resp.all("x-b") == ["vary"]
    assert resp.all("x-seen") == ["upstream"]


VOLATILE = {"date", "x-tollway-request-id", "x-tollway-response-latency"}


@pytest.mark.parametrize("names", [
    ("test-block",),  # one block: its lines as they are
    ("test-vary-block", "test-block"),  # disjoint blocks
    ("test-setter", "test-block"),  # single headers: resolved
    ("test-vary-block", "test-vary-setter"),  # overlapping blocks: resolved
    ("test-ctype-block",),  # a block setting the reply's own Content-Type
    ("test-ctype-block", "test-block"),
])
def test_local_reply_headers_match_the_general_resolution(
        fetch: Callable[..., Any], names: tuple[str, ...]) -> None:
    """A 404 whose global plugins only set headers is written from their blocks directly;
    the same plugins beside a HeaderList plugin that changes nothing take the general path.
    Both must send the same headers, in the same order, and the same body."""
    light = fetch([], "/nowhere", global_names=names)
    general = fetch([], "/nowhere", global_names=(*names, "test-untouched"))
    assert light.status == general.status == 404

    def stable(resp: Any) -> list[tuple[str, str]]:
        return [(n, v) for n, v in resp.headers if n.lower() not in VOLATILE]

    assert stable(light) == stable(general)
    assert light.text.replace(light.header("x-tollway-request-id") or "-", "ID") == \
        general.text.replace(general.header("x-tollway-request-id") or "-", "ID")
    if "test-ctype-block" in names:
        assert light.all("content-type") == ["text/x-plugin"]
    else:
        assert light.all("content-type") == ["application/json; charset=utf-8"]
