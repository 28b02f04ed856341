"""A small node-wide table of named records, shared by the worker processes and the supervisor.

The circuit-breaker and canary plugins keep state that must hold for the node, not per worker
(a breaker opened by one worker's failures rejects on every worker), and that the supervisor
reads for the Admin API and writes for manual overrides without asking the workers. As the
rate-limiting plugin's `SharedCounters`, it is a file under `<prefix>/shm/` that every process
`mmap`s, with one `flock` around each read-modify-write. Each slot is a NUL-padded UTF-8 key
followed by a fixed-size payload whose layout the owning plugin defines; a header records the
payload size, so a layout change (a new tollway version) starts from an empty table rather
than misreading old records.

Without a node prefix (unit tests, offline config checks) the same class works on an
in-process buffer, and the lock is a no-op.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tollway import metrics

HEADER = struct.Struct("<16sII")  # magic, payload size, slot count
HEADER_SIZE = 64
KEY_SIZE = 128
MAGIC = b"tollway-node-t1\0"


class NodeTable:
    def __init__(self, path: Path | None, payload_size: int, slots: int = 512) -> None:
        self.path = path
        self.payload_size = payload_size
        self.slots = slots
        self.slot_size = KEY_SIZE + payload_size
        self.size = HEADER_SIZE + slots * self.slot_size
        self.offsets: dict[str, int] = {}
        self.fd = -1
        self.buf: mmap.mmap | bytearray
        if path is None:
            self.buf = bytearray(self.size)
            HEADER.pack_into(self.buf, 0, MAGIC, payload_size, slots)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            head = os.pread(self.fd, HEADER.size, 0)
            if (os.fstat(self.fd).st_size != self.size or len(head) != HEADER.size
                    or HEADER.unpack(head) != (MAGIC, payload_size, slots)):
                os.ftruncate(self.fd, 0)
                os.ftruncate(self.fd, self.size)
                os.pwrite(self.fd, HEADER.pack(MAGIC, payload_size, slots), 0)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.buf = mmap.mmap(self.fd, self.size)

    @contextmanager
    def locked(self, shared: bool = False) -> Iterator[None]:
        if self.fd < 0:
            yield
            return
        fcntl.flock(self.fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _key_at(self, off: int) -> bytes:
        return bytes(self.buf[off:off + KEY_SIZE]).rstrip(b"\0")

    def find(self, key: str) -> int | None:
        """The payload offset of `key`'s slot, None when absent (call with the lock held, or
        accept a racy answer)."""
        off = self.offsets.get(key)
        if off is not None:
            return off
        raw = key.encode()[:KEY_SIZE]
        start = int.from_bytes(hashlib.blake2b(raw, digest_size=4).digest(), "little")
        for i in range(self.slots):
            slot = HEADER_SIZE + ((start + i) % self.slots) * self.slot_size
            k = self._key_at(slot)
            if k == raw:
                self.offsets[key] = slot + KEY_SIZE
                return slot + KEY_SIZE
            if not k:
                return None
        return None

    def ensure(self, key: str, init: bytes) -> int:
        """The payload offset of `key`, creating its slot with payload `init` (lock held)."""
        off = self.find(key)
        if off is not None:
            return off
        raw = key.encode()[:KEY_SIZE]
        start = int.from_bytes(hashlib.blake2b(raw, digest_size=4).digest(), "little")
        for i in range(self.slots):
            slot = HEADER_SIZE + ((start + i) % self.slots) * self.slot_size
            if not self._key_at(slot):
                self.buf[slot:slot + KEY_SIZE] = raw.ljust(KEY_SIZE, b"\0")
                self.buf[slot + KEY_SIZE:slot + self.slot_size] = init.ljust(
                    self.payload_size, b"\0")
                self.offsets[key] = slot + KEY_SIZE
                return slot + KEY_SIZE
        raise RuntimeError(f"node table {self.path} is full ({self.slots} records)")

    def read(self, off: int) -> bytes:
        return bytes(self.buf[off:off + self.payload_size])

    def write(self, off: int, payload: bytes) -> None:
        self.buf[off:off + len(payload)] = payload

    def items(self) -> list[tuple[str, bytes]]:
        """Every (key, payload), under a shared lock."""
        out = []
        with self.locked(shared=True):
            for i in range(self.slots):
                slot = HEADER_SIZE + i * self.slot_size
                k = self._key_at(slot)
                if k:
                    out.append((k.decode(errors="replace"),
                                bytes(self.buf[slot + KEY_SIZE:slot + self.slot_size])))
        return out

    def close(self) -> None:
        if isinstance(self.buf, mmap.mmap):
            self.buf.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def node_table(worker: dict[str, Any], prefix: Path | None, name: str,
               payload_size: int) -> NodeTable:
    """This process's handle on the node's table `name` (kept in `ctx.worker`, so config
    changes reuse it)."""
    key = f"node-table:{name}:{prefix}"
    table = worker.get(key)
    if table is None:
        path = prefix / "shm" / f"{name}.bin" if prefix is not None else None
        table = worker[key] = NodeTable(path, payload_size)
    assert isinstance(table, NodeTable)
    return table


class LiveValues(dict[tuple[str, ...], float]):
    """A gauge's values read from a node table when the gauge is exported.

    A worker's metrics are exported when the supervisor scrapes it, but a node table changes
    without the worker knowing (the supervisor forces a breaker, another worker opens it):
    reading the table at export time makes every worker report the node's state, and the
    `max` merge across workers gives that same state once."""

    def __init__(self, read: Callable[[], Mapping[tuple[str, ...], float]]) -> None:
        super().__init__()
        self.read = read

    def items(self) -> Any:
        self.clear()
        try:
            self.update(self.read())
        except Exception:  # a scrape must not fail because a table could not be read
            pass
        return super().items()


def live_gauge(gauge: metrics.Gauge,
               read: Callable[[], Mapping[tuple[str, ...], float]]) -> None:
    """Make `gauge`'s exported values come from `read()` (once per worker registry)."""
    if not isinstance(gauge.values, LiveValues):
        gauge.values = LiveValues(read)
