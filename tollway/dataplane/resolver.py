"""Upstream host name resolution: the `dns_hostsfile` first, then DNS.

Service hosts (`resolve`): the system resolver, answers cached for `ttl` seconds. Upstream
targets (`resolve_all`): every A record with its TTL, asked directly of the nameservers in
/etc/resolv.conf over UDP (the system resolver hides TTLs), falling back to the system
resolver with the fixed `ttl` when no nameserver answers. The hosts file is read once, so
the common static case costs nothing per request.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
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


def read_nameservers(path: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    try:
        text = Path(path).read_text()
    except OSError:
        return out
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            out.append((words[1], 53))
    return out


def _query(name: str, qid: int) -> bytes:
    labels = b"".join(bytes([len(p)]) + p for p in name.rstrip(".").encode("idna").split(b"."))
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + b"\0\1\0\1"


def _skip_name(msg: bytes, i: int) -> int:
    while True:
        n = msg[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += n + 1


def parse_a_answer(msg: bytes, qid: int) -> tuple[list[str], float]:
    """The A records of a DNS response and their smallest TTL. Raises OSError on a name
    error, an empty answer or a malformed message."""
    try:
        rid, flags, qd, an = struct.unpack_from("!HHHH", msg)
        if rid != qid or not flags & 0x8000:
            raise OSError("unexpected DNS message")
        if flags & 0xF:
            raise OSError(f"DNS error rcode {flags & 0xF}")
        i = 12
        for _ in range(qd):
            i = _skip_name(msg, i) + 4
        ips: list[str] = []
        ttl = float("inf")
        for _ in range(an):
            i = _skip_name(msg, i)
            rtype, _cls, rttl, rdlen = struct.unpack_from("!HHIH", msg, i)
            i += 10
            if rtype == 1 and rdlen == 4:
                ips.append(socket.inet_ntoa(msg[i:i + 4]))
                ttl = min(ttl, float(rttl))
            i += rdlen
    except (struct.error, IndexError) as exc:
        raise OSError("malformed DNS message") from exc
    if not ips:
        raise OSError("no A record")
    return ips, ttl


class _DNSProtocol(asyncio.DatagramProtocol):
    def __init__(self, fut: asyncio.Future[bytes]) -> None:
        self.fut = fut

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.fut.done():
            self.fut.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.fut.done():
            self.fut.set_exception(exc)


class Resolver:
    def __init__(self, hostsfile: str = "/etc/hosts", ttl: float = 30.0,
                 nameservers: list[tuple[str, int]] | None = None) -> None:
        self.hosts = read_hostsfile(hostsfile) if hostsfile else {}
        self.ttl = ttl
        self.cache: dict[str, tuple[float, str]] = {}
        self.nameservers = read_nameservers() if nameservers is None else nameservers
        self.dns_timeout = 2.0

    async def resolve_all(self, host: str) -> tuple[list[str], float]:
        """Every address of `host` and how long (seconds) the answer may be kept."""
        ip = self.static(host)
        if ip is not None:
            return [ip], float("inf")
        loop = asyncio.get_running_loop()
        last: Exception = OSError(f"no address for {host}")
        for server in self.nameservers:
            qid = int.from_bytes(os.urandom(2), "big")
            fut: asyncio.Future[bytes] = loop.create_future()
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda fut=fut: _DNSProtocol(fut), remote_addr=server)  # type: ignore[misc]
            except OSError as exc:
                last = exc
                continue
            try:
                transport.sendto(_query(host, qid))
                msg = await asyncio.wait_for(fut, self.dns_timeout)
                return parse_a_answer(msg, qid)
            except (OSError, TimeoutError) as exc:
                last = exc if isinstance(exc, OSError) else OSError("DNS timeout")
                if isinstance(exc, OSError) and "rcode 3" in str(exc):
                    raise  # NXDOMAIN is an answer: no other server will know better
            finally:
                transport.close()
        try:  # no nameserver answered: the system resolver, with the fixed TTL
            infos = await loop.getaddrinfo(host, 80, type=socket.SOCK_STREAM,
                                           family=socket.AF_INET)
        except OSError as exc:
            raise OSError(f"{host}: {last}; {exc}") from exc
        ips = list(dict.fromkeys(str(i[4][0]) for i in infos))
        if not ips:
            raise OSError(f"no address for {host}")
        return ips, self.ttl

    def static(self, host: str) -> str | None:
        return self.hosts.get(host.lower())

    async def resolve(self, host: str, port: int, sni: str | None,
                      tls_key: tuple[object, ...] | None = None) -> Origin:
        ip = self.static(host)
        if ip is not None:
            return (ip, port, sni, tls_key)
        loop = asyncio.get_running_loop()
        now = loop.time()
        hit = self.cache.get(host)
        if hit is not None and hit[0] > now:
            return (hit[1], port, sni, tls_key)
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if not infos:
            raise OSError(f"no address for {host}")
        addr = str(infos[0][4][0])
        self.cache[host] = (now + self.ttl, addr)
        return (addr, port, sni, tls_key)
