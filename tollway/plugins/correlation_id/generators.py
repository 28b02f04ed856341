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

Generator = Callable[[Any], bytes]


_POOL_SIZE = 4096  # random bytes read per getrandom() call: 256 ids
_pool = b""
_pos = 0


def _reset_pool() -> None:
    global _pool, _pos
    _pool, _pos = b"", 0


# A forked worker must not hand out the ids its parent's buffer still holds.
os.register_at_fork(after_in_child=_reset_pool)


_VARIANT = (b"8", b"9", b"a", b"b")


def uuid4_bytes() -> bytes:
    """A random (version 4) UUID as lowercase hex bytes, e.g. b"3b6f2c7e-...": 16 bytes from
    the OS's CSPRNG (read 4 KiB at a time), formatted once."""
    global _pool, _pos
    pos = _pos
    if pos >= len(_pool):
        _pool, pos = os.urandom(_POOL_SIZE), 0
    _pos = pos + 16
    raw = _pool[pos:pos + 16]
    h = raw.hex().encode()
    # version 4 ("4" for the 13th digit), RFC 4122 variant (0b10xx: 8, 9, a or b)
    return b"%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], _VARIANT[(raw[8] >> 4) & 3],
                                   h[17:20], h[20:])


def uuid4() -> str:
    return uuid4_bytes().decode()


def _uuid(req: Any) -> bytes:
    return uuid4_bytes()


class _Counter:
    """`<worker uuid>#<n>`, n counting from 1 over every correlation-id config of a worker."""

    __slots__ = ("n", "prefix")

    def __init__(self) -> None:
        self.prefix = uuid4_bytes() + b"#"
        self.n = 0

    def __call__(self, req: Any) -> bytes:
        self.n += 1
        return self.prefix + b"%d" % self.n


class _Tracker:
    """`<server addr>-<server port>-<worker pid>-<connection serial>-<requests on the
    connection>-<unix time, 3 decimals>` (nginx's $server_addr, $server_port, pid,
    $connection, $connection_requests, ngx.now())."""

    def __init__(self) -> None:
        self.serials: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self.next_serial = 0

    def __call__(self, req: Any) -> bytes:
        proto = req.proto
        serial = self.serials.get(proto)
        if serial is None:
            self.next_serial += 1
            serial = self.serials[proto] = self.next_serial
        sock = proto.transport.get_extra_info("sockname") if proto.transport else None
        addr, port = (sock[0], sock[1]) if isinstance(sock, tuple) else ("unix:", proto.port)
        return (f"{addr}-{port}-{os.getpid()}-{serial}-{proto.requests}-{time.time():.3f}"
                .encode())


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
