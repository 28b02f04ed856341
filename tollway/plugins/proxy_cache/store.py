"""The memory strategy: one LRU dictionary per `memory.dictionary_name` per worker process.

Kong keeps entries in an nginx shared dict, one per node, whose size is fixed
(`mem_cache_size`, 128m for `kong_db_cache`) and which evicts least-recently-used entries
when a new one does not fit. tollway keeps the same bound per worker in `ctx.worker`, so a
config change keeps the cache, and each worker process has its own cache (a first request on
another worker is a Miss). An entry larger than `MAX_ENTRY` is never stored.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

MAX_ENTRY = 16 << 20
ENTRY_OVERHEAD = 256  # bookkeeping counted per entry besides its bytes


@dataclass(slots=True)
class Entry:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    timestamp: int  # ngx.time() when stored
    ttl: int  # the resource's freshness lifetime
    expires: float  # monotonic deadline of the storage TTL
    size: int


def entry_size(headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    return len(body) + sum(len(n) + len(v) + 4 for n, v in headers) + ENTRY_OVERHEAD


class MemoryDict:
    def __init__(self, capacity: int, max_entry: int = MAX_ENTRY) -> None:
        self.capacity = capacity
        self.max_entry = min(max_entry, capacity)
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.used = 0

    def get(self, key: str) -> Entry | None:
        e = self.entries.get(key)
        if e is None:
            return None
        if e.expires <= time.monotonic():
            self.delete(key)
            return None
        self.entries.move_to_end(key)
        return e

    def set(self, key: str, entry: Entry) -> bool:
        if entry.size > self.max_entry:
            return False
        self.delete(key)
        now = time.monotonic()
        if self.used + entry.size > self.capacity:
            for k in [k for k, e in self.entries.items() if e.expires <= now]:
                self.delete(k)
        while self.used + entry.size > self.capacity and self.entries:
            _, old = self.entries.popitem(last=False)
            self.used -= old.size
        self.entries[key] = entry
        self.used += entry.size
        return True

    def delete(self, key: str) -> None:
        e = self.entries.pop(key, None)
        if e is not None:
            self.used -= e.size

    def flush(self) -> None:
        self.entries.clear()
        self.used = 0
