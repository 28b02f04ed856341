"""The proxy access log: one JSON object per line, written in batches.

Lines are buffered and flushed at most every 50 ms (or at 64 KiB), so logging costs one
`json.dumps` per request and one write per batch rather than a syscall per request.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tollway.dataplane.proxy import Exchange

FLUSH_DELAY = 0.05
FLUSH_BYTES = 1 << 16


class AccessLog:
    def __init__(self, loop: asyncio.AbstractEventLoop, path: str) -> None:
        self.loop = loop
        if path in ("/dev/stdout", "-"):
            self.fd, self.owned = 1, False
        elif path == "/dev/stderr":
            self.fd, self.owned = 2, False
        else:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self.owned = True
        self.buf: list[bytes] = []
        self.size = 0
        self.scheduled = False

    def log(self, ex: Exchange) -> None:
        now = self.loop.time()
        m = ex.match
        svc = ex.service
        entry = {
            "started_at": int((time.time() - (now - ex.t_start)) * 1000),
            "client_ip": ex.proto.client_ip,
            "request_id": ex.request_id,
            "request": {"method": ex.method.decode("latin-1"),
                        "uri": ex.url.decode("latin-1"), "size": ex.req_size},
            "response": {"status": ex.status, "size": ex.resp_size},
            "latencies": {
                "request": int((now - ex.t_start) * 1000),
                "proxy": int((ex.t_upstream - ex.t_start) * 1000) if ex.t_upstream else None,
            },
            "route": None if m is None else {"id": m.route["id"], "name": m.route["name"]},
            "service": None if svc is None else {"id": svc.id, "name": svc.name},
            "upstream": ex.upstream_addr or None,
            "tries": ex.tries,
        }
        if ex.fail_reason:
            entry["error"] = ex.fail_reason
        ctx = ex._ctx
        if ctx is not None:
            # the correlation-id plugin's value (Kong's log serializer field)
            cid = ctx.get("correlation-id")
            if cid is not None:
                entry["correlation_id"] = (cid.decode("latin-1") if isinstance(cid, bytes)
                                           else str(cid))
        line = json.dumps(entry, separators=(",", ":")).encode() + b"\n"
        self.buf.append(line)
        self.size += len(line)
        if self.size >= FLUSH_BYTES:
            self.flush()
        elif not self.scheduled:
            self.scheduled = True
            self.loop.call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        self.scheduled = False
        if not self.buf:
            return
        data = b"".join(self.buf)
        self.buf.clear()
        self.size = 0
        try:
            while data:
                n = os.write(self.fd, data)
                data = data[n:]
        except BlockingIOError:
            pass  # a stalled log consumer must not stall the proxy: drop the batch
        except OSError:
            pass

    def close(self) -> None:
        self.flush()
        if self.owned:
            os.close(self.fd)
