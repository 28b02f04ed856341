"""The plugin contract: a class with a schema, built once per config, with phase methods.

    class MyPlugin(Plugin):
        name = "my-plugin"
        priority = 1000            # higher runs first (Kong's PRIORITY)
        version = "1.0.0"
        config_schema = Record(fields={"greeting": Field.string(default="hi")})

        def __init__(self, config, entity, ctx):  # once per config snapshot, not per request
            super().__init__(config, entity, ctx)
            self.value = config["greeting"].encode()

        def access(self, req):                   # before the upstream is called
            req.set_header("X-Greeting", self.value)

        def response(self, req, headers):        # response headers, upstream or local
            headers.set(b"X-Greeted", b"yes")

        def log(self, req):                      # after the response was sent
            ...

Phases are optional: the chain only calls what a class defines (detected once per snapshot).
`access` may be `async def` when it does I/O; the others must be plain functions. `body`
(`def body(self, req, chunk: bytes, last: bool) -> bytes`) transforms the response body.
Per-request state goes in `req.ctx[self.name]`; the plugin instance is shared by every
request and must not keep per-request state on `self`.

Request bodies are streamed to the upstream unless a plugin asks to see them: a class with
`buffer_request_body = True` (or an instance whose `wants_body()` says so, e.g. only when
its config needs the body) makes every route it applies to read the whole body before the
access phase — then `req.body` holds it and `req.set_body(data)` replaces it. Bodies over
`request_body_limit` (default `BODY_BUFFER_LIMIT`, 8 MiB) are answered 413.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, ClassVar, cast

from tollway.config.schema import Record

BODY_BUFFER_LIMIT = 8 << 20  # the most a route buffers for its plugins, unless they say more

# A response header for `req.set_response_headers`: (name, value, replace, lower-case name,
# the header line as sent). replace=True sets (the upstream's values of the name are
# dropped), False adds; a value of None with replace=True removes the header. Build them
# with `response_header`, once in __init__ when the value is constant.
ResponseHeader = tuple[bytes, bytes | None, bool, bytes, bytes | None]


def response_header(name: bytes, value: bytes | None, replace: bool = True) -> ResponseHeader:
    """An entry for `req.set_response_headers` (set, or add with replace=False; a None
    value removes the header). The serialised line is made here, not when the head is
    written: an entry built once costs nothing per response."""
    line = None if value is None else name + b": " + value + b"\r\n"
    return (name, value, replace, name.lower(), line)


# Every lower-case header name a HeaderBlock names gets a bit, so that the response head
# checks in integer arithmetic that no plugin's header is overridden by a later plugin's
# (set operations cost ~3.5k instructions a response for the seed chain). Names are those of
# plugin configs, a bounded lot; past NAME_BITS_MAX they share the last bit, which can report
# an overlap that is not one (the exact path then runs), never miss one.
_NAME_BITS: dict[bytes, int] = {}
NAME_BITS_MAX = 512
# Every name with a bit of its own is also in the response head's table of header codes
# (dataplane/response.py seeds it with the names it treats specially, which keep their own
# codes): the one dict lookup per upstream header that finds the special ones also finds
# the names a plugin block may replace, so the head needs no set lookup per header.
HEAD_CODES: dict[bytes, int] = {}
R_NAMED = -1  # HEAD_CODES: a name with a bit (look it up in NAME_BIT)
NAME_BIT = _NAME_BITS
# HEAD_CODES by the name as the upstream spells it (response.py fills it, bounded): one
# lookup per upstream header instead of lower() and a lookup. Emptied whenever HEAD_CODES
# gains a name, so a spelling learnt as plain never hides a name a plugin now sets.
HEAD_CODES_RAW: dict[bytes, int] = {}


def name_bits(names: Iterable[bytes]) -> int:
    """The OR of the bits of these lower-case header names."""
    mask = 0
    for name in names:
        bit = _NAME_BITS.get(name)
        if bit is None:
            bit = 1 << min(len(_NAME_BITS), NAME_BITS_MAX)
            if len(_NAME_BITS) <= NAME_BITS_MAX:
                _NAME_BITS[name] = bit
                HEAD_CODES.setdefault(name, R_NAMED)
                HEAD_CODES_RAW.clear()
        mask |= bit
    return mask


class HeaderNames(frozenset[bytes]):
    """A HeaderBlock's names (lower-case): the set holds the names the block sets (they
    lose the upstream's values), `added` those of lines added beside the upstream's values
    (Vary). Build it once per config; `mask` / `lmask` are the bits of the set names / of
    every line's name."""

    __slots__ = ("added", "lines", "lmask", "mask")
    added: frozenset[bytes]
    lines: frozenset[bytes]  # every line's name: the set ones and the added ones
    mask: int
    lmask: int

    def __new__(cls, names: Iterable[bytes], added: Iterable[bytes] = ()) -> HeaderNames:
        self = super().__new__(cls, names)
        self.added = frozenset(added)
        self.lines = self.added.union(self)
        self.mask = name_bits(self)
        self.lmask = self.mask | name_bits(self.added)
        return self


class HeaderBlock(tuple[HeaderNames, bytes]):
    """Response headers set together, already serialised: `names` (lower-case) lose the
    upstream's values and `lines` ("Name: value\\r\\n" each) are sent. A name in `names` with
    no line is removed; lines of `names.added` (a `HeaderNames`) are added beside the
    upstream's values instead. For `req.set_response_headers`: one item to resolve per
    response instead of one per header (rate-limiting's seven, cors's per-Origin set).

    A tuple (names, lines): made per response by some plugins, and a tuple subclass can be
    made without a Python call (`new_block`), which a class with an `__init__` cannot."""

    __slots__ = ()

    def __new__(cls, names: frozenset[bytes], lines: bytes) -> HeaderBlock:
        # a HeaderNames made once per config; a plain set is converted (per call)
        if names.__class__ is not HeaderNames:
            names = HeaderNames(names)
        return tuple.__new__(cls, (names, lines))

    def __getnewargs__(self) -> tuple[HeaderNames, bytes]:
        return self[0], self[1]  # (copy and pickle call __new__ with these)

    @property
    def names(self) -> HeaderNames:
        return self[0]

    @property
    def lines(self) -> bytes:
        return self[1]

    def entries(self) -> list[ResponseHeader]:
        """The same headers one by one (for the paths that edit a HeaderList)."""
        return block_entries(self)


def block_entries(block: tuple[HeaderNames, bytes]) -> list[ResponseHeader]:
    """A block's headers one by one (for the paths that edit a HeaderList)."""
    names, lines = block
    out = []
    seen = set()
    added = names.added
    for line in lines.split(b"\r\n"):
        if line:
            name, _, value = line.partition(b": ")
            lname = name.lower()
            out.append(response_header(name, value, replace=lname not in added))
            seen.add(lname)
    # names removed without a line of their own
    out += [(n, None, True, n, None) for n in sorted(names - seen)]
    return out


# `new_block((names, lines))` is `HeaderBlock(names, lines)` without a Python call (~500
# instructions less), for a block made per response; `names` must be a HeaderNames.
new_block = cast(Callable[[tuple[HeaderNames, bytes]], HeaderBlock],
                 partial(tuple.__new__, HeaderBlock))

# A block as a plain tuple: `(names, lines)` with `names` a HeaderNames made once per
# config. What the plugins that make a block for every response use (rate-limiting,
# correlation-id): a tuple display is one bytecode, while a HeaderBlock, even made by
# `new_block`, costs a call through tuple.__new__ and a subclass's deallocation (~1k
# instructions a block under callgrind). Anything in `resp_extra` whose first item is a
# HeaderNames is a block (a single header's first item is its name, bytes).
Block = tuple[HeaderNames, bytes]

# What `req.set_response_headers` takes: single headers and blocks.
ResponseItem = ResponseHeader | HeaderBlock | Block


def expand(items: list[ResponseItem]) -> list[ResponseHeader]:
    """`items` with every block replaced by its headers."""
    out: list[ResponseHeader] = []
    for item in items:
        if item[0].__class__ is HeaderNames:
            out += block_entries(item)
        else:
            out.append(item)  # type: ignore[arg-type]
    return out


class Plugin:
    name: ClassVar[str]
    priority: ClassVar[int] = 0
    version: ClassVar[str] = "1.0.0"
    config_schema: ClassVar[Record]
    # Kong's typedefs.no_consumer & co.: the plugin cannot be scoped that way.
    no_consumer: ClassVar[bool] = False
    no_route: ClassVar[bool] = False
    no_service: ClassVar[bool] = False
    # The default of the plugin entity's `protocols` field (None: Kong's default list).
    protocols: ClassVar[tuple[str, ...] | None] = None
    # Envoy-style metadata: maturity and whether it is hardened against hostile clients.
    status: ClassVar[str] = "stable"
    # The access phase needs the request body (see the module docstring).
    buffer_request_body: ClassVar[bool] = False
    # The largest body this plugin wants buffered (None: BODY_BUFFER_LIMIT).
    request_body_limit: ClassVar[int | None] = None

    def __init__(self, config: dict[str, Any], entity: dict[str, Any],
                 ctx: BuildContext | None = None) -> None:
        self.config = config
        self.id: str = entity["id"]
        self.entity = entity
        self.ctx = ctx if ctx is not None else BuildContext()

    def wants_body(self) -> bool:
        """Whether this configured instance needs the request body in its access phase.
        Override to decide from the config; the default is the class attribute."""
        return self.buffer_request_body


class BuildContext:
    """What a plugin constructor may use besides its own config, once per snapshot.

    * `config`: the whole validated config (consumers, credentials, routes, ...);
    * `shared`: a dict shared by every plugin built for this snapshot — build an index once
      (e.g. jwt secrets by key) with `ctx.once("jwt:secrets", build)`;
    * `worker`: a dict that outlives snapshots for this worker process — counters, caches,
      connection pools that a config change must not reset;
    * `settings`: the node settings (None in offline validation);
    * `offline`: True when built only to check a config (supervisor, CLI): do no I/O.
    """

    def __init__(self, config: Any = None, settings: Any = None,
                 worker: dict[str, Any] | None = None, offline: bool = False) -> None:
        self.config = config
        self.settings = settings
        self.worker: dict[str, Any] = worker if worker is not None else {}
        self.shared: dict[str, Any] = {}
        self.offline = offline

    def once(self, key: str, build: Any) -> Any:
        if key not in self.shared:
            self.shared[key] = build()
        return self.shared[key]

    def entities(self, name: str) -> list[dict[str, Any]]:
        if self.config is None:
            return []
        rows: list[dict[str, Any]] = self.config.entities.get(name, [])
        return rows


class HeaderList:
    """Response headers as an ordered list of (name, value) bytes pairs with case-insensitive
    access. Only built when a plugin on the route has a `response` phase."""

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[bytes, bytes]] | None = None) -> None:
        self.items = items if items is not None else []

    def get(self, name: bytes) -> bytes | None:
        lname = name.lower()
        for n, v in self.items:
            if n.lower() == lname:
                return v
        return None

    def get_all(self, name: bytes) -> list[bytes]:
        lname = name.lower()
        return [v for n, v in self.items if n.lower() == lname]

    def set(self, name: bytes, value: bytes) -> None:
        """Replace every value of `name` with `value` (kong.response.set_header)."""
        self.remove(name)
        self.items.append((name, value))

    def add(self, name: bytes, value: bytes) -> None:
        """Add a value, keeping existing ones (kong.response.add_header)."""
        self.items.append((name, value))

    def remove(self, name: bytes) -> None:
        lname = name.lower()
        self.items = [(n, v) for n, v in self.items if n.lower() != lname]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, bytes) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
