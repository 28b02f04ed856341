"""The attributes of an exchange, declared once for the type checker.

`Exchange` (tollway.dataplane.proxy) is split into mixins by concern — the request head, the
response writer, the plugin API — and each mixin reads attributes that `Exchange` sets. They
inherit this class so those attributes are declared in one place. Annotations only: nothing
here exists at run time, and no method may be defined here (it would shadow the real one).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tollway.dataplane.protocol import DownstreamProtocol
    from tollway.dataplane.server import ServerState
    from tollway.dataplane.snapshot import Snapshot
    from tollway.plugins.chain import Chain


class ExchangeFields:
    proto: DownstreamProtocol
    state: ServerState
    snapshot: Snapshot
    loop: asyncio.AbstractEventLoop
    method: bytes
    url: bytes
    headers: list[tuple[bytes, bytes]]
    version: str
    http11: bool
    keep_alive: bool
    t_start: float
    t_upstream: float
    request_id: str
    host: bytes
    accept: bytes | None
    req_ctype: bytes | None
    upgrade: bool
    expect_continue: bool
    te_trailers: bool
    chunked_in: bool
    has_body: bool
    content_length: bytes
    # the client's header lines to forward, four parts a line (name, ": ", value, CRLF):
    # joined once with the head, they cost less than a concatenated line each
    fwd: list[bytes]
    forwarded: dict[int, bytes]
    req_complete: bool
    response_started: bool
    status: int
    chunked_out: bool
    resp_size: int
    done: bool
    tunnel: bool
    req_overlay: dict[bytes, tuple[bytes, tuple[bytes, ...], bytes]] | None
    _raw: dict[bytes, bytes] | None
    chain: Chain
    path_override: bytes | None
    query_override: bytes | None
    t_response: float
