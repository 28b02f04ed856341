"""Upstream host name resolution: the `dns_hostsfile` first, then the system resolver.

Answers from the system resolver are cached for `ttl` seconds (Python's resolver does not
expose record TTLs; the upstreams issue brings TTL-aware DNS). The hosts file is read once,
so the common static case costs nothing per request.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from tollway.dataplane.upstream.pool import Origin


def read_hostsfile(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = Path(path).read_text()
    except OSError:
        return out
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        for name in words[1:]:
            out.setdefault(name.lower(), words[0])  # first entry wins, as in glibc
    return out


class Resolver:
    def __init__(self, hostsfile: str = "/etc/hosts", ttl: float = 30.0) -> None:
        self.hosts = read_hostsfile(hostsfile) if hostsfile else {}
        self.ttl = ttl
        self.cache: dict[str, tuple[float, str]] = {}

    def static(self, host: str) -> str | None:
        return self.hosts.get(host.lower())

    async def resolve(self, host: str, port: int, sni: str | None) -> Origin:
        ip = self.static(host)
        if ip is not None:
            return (ip, port, sni)
        loop = asyncio.get_running_loop()
        now = loop.time()
        hit = self.cache.get(host)
        if hit is not None and hit[0] > now:
            return (hit[1], port, sni)
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if not infos:
            raise OSError(f"no address for {host}")
        addr = str(infos[0][4][0])
        self.cache[host] = (now + self.ttl, addr)
        return (addr, port, sni)
