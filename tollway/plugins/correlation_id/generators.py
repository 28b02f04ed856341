"""The three id generators (Kong's `uuid`, `uuid#counter`, `tracker`).

`uuid#counter` and `tracker` keep per-worker state in the dict they are built with
(`BuildContext.worker`), so a config change does not restart the counter — as Kong, whose
state is created once in `init_worker`.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Callable
from typing import Any

Generator = Callable[[Any], str]


def uuid4() -> str:
    """A random (version 4) UUID in lowercase hex: 16 random bytes, formatted once."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _uuid(req: Any) -> str:
    return uuid4()


class _Counter:
    """`<worker uuid>#<n>`, n counting from 1 over every correlation-id config of a worker."""

    __slots__ = ("n", "prefix")

    def __init__(self) -> None:
        self.prefix = uuid4() + "#"
        self.n = 0

    def __call__(self, req: Any) -> str:
        self.n += 1
        return self.prefix + str(self.n)


class _Tracker:
    """`<server addr>-<server port>-<worker pid>-<connection serial>-<requests on the
    connection>-<unix time, 3 decimals>` (nginx's $server_addr, $server_port, pid,
    $connection, $connection_requests, ngx.now())."""

    def __init__(self) -> None:
        self.serials: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self.next_serial = 0

    def __call__(self, req: Any) -> str:
        proto = req.proto
        serial = self.serials.get(proto)
        if serial is None:
            self.next_serial += 1
            serial = self.serials[proto] = self.next_serial
        sock = proto.transport.get_extra_info("sockname") if proto.transport else None
        addr, port = (sock[0], sock[1]) if isinstance(sock, tuple) else ("unix:", proto.port)
        return f"{addr}-{port}-{os.getpid()}-{serial}-{proto.requests}-{time.time():.3f}"


def build(name: str, worker: dict[str, Any]) -> Generator:
    if name == "uuid":
        return _uuid
    if name == "uuid#counter":
        counter: _Counter | None = worker.get("correlation-id:counter")
        if counter is None:
            counter = worker["correlation-id:counter"] = _Counter()
        return counter
    tracker: _Tracker | None = worker.get("correlation-id:tracker")
    if tracker is None:
        tracker = worker["correlation-id:tracker"] = _Tracker()
    return tracker
