"""The supervisor ↔ worker control channel: JSON messages, one per line, on a socketpair.

    supervisor ──{"op":"config","id":n,"entities":…}──► worker
    supervisor ◄──{"op":"ack","id":n,"ok":true,"hash":…}── worker
    supervisor ◄──{"op":"ready","pid":…}── worker   (once, after binding its listeners)
    supervisor ◄──{"op":"stats",…}── worker         (every second)
    supervisor ──{"op":"metrics","id":n}──► worker  (a /metrics scrape)
    supervisor ◄──{"op":"metrics","id":n,"metrics":{…}}── worker   (tollway.metrics export)
    supervisor ──{"op":"target_health","id":n,"upstream":…,"target":…,"healthy":b}──► worker
    supervisor ◄──{"op":"ack","id":n,"ok":true,"matched":k}── worker   (Admin API PUT …/healthy)
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

LIMIT = 1 << 30  # a whole config travels in one line


async def open_channel(sock: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_unix_connection(sock=sock, limit=LIMIT)


def send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")


async def receive(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    line = await reader.readline()
    if not line:
        return None
    msg: dict[str, Any] = json.loads(line)
    return msg
