"""Pool.write_soon: request heads written together once the loop iteration's callbacks have
run, in the order they came; a connection closed meanwhile is skipped."""

from __future__ import annotations

import asyncio
from typing import Any

from tollway.dataplane.upstream.pool import Pool


class Transport:
    """Records writes (the unit under test is the pool's bookkeeping, not a socket)."""

    def __init__(self, log: list[tuple[str, bytes]], name: str) -> None:
        self.log, self.name, self.closing = log, name, False

    def write(self, data: bytes) -> None:
        self.log.append((self.name, data))

    def is_closing(self) -> bool:
        return self.closing


def test_heads_leave_together_after_the_callbacks_of_the_iteration() -> None:
    async def main() -> list[tuple[str, bytes]]:
        loop = asyncio.get_running_loop()
        pool = Pool(loop, size=10, max_requests=100, idle_timeout=60)
        log: list[tuple[str, bytes]] = []
        a, b, c = (Transport(log, n) for n in "abc")
        t: Any
        for t, data in ((a, b"GET /1"), (b, b"GET /2"), (c, b"GET /3")):
            pool.write_soon(t, data)
        assert log == []  # nothing yet: the rest of this iteration may add more
        b.closing = True  # its exchange ended meanwhile (the client went away)
        await asyncio.sleep(0)
        first = list(log)
        pool.write_soon(a, b"GET /4")  # a new batch schedules its own write
        await asyncio.sleep(0)
        pool.closed = True
        pool._timer.cancel()
        return [*first, ("then", b""), *log[len(first):]]

    assert asyncio.run(main()) == [("a", b"GET /1"), ("c", b"GET /3"), ("then", b""),
                                   ("a", b"GET /4")]
