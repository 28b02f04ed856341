"""Upstream host name resolution: the `dns_hostsfile` first, then DNS.

Names are asked directly of the nameservers (`dns_resolver`, else those of /etc/resolv.conf)
over UDP, since the system resolver hides TTLs and SRV records: the record types of
`dns_order` in turn (Kong's default `LAST,SRV,A,CNAME`), every address with its TTL, SRV
records with their ports and weights. When DNS gives no address, the system resolver, with
the fixed `ttl`. Upstream targets (`resolve_all`) become every address; a service host
(`resolve`) hands its addresses out in turn. The hosts file is read once, so the common
static case costs nothing per request.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tollway.dataplane.upstream.pool import Origin
from tollway.settings import Settings


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


# record types by dns_order name; CNAME is followed inside the answers of the others
RTYPES = {"A": 1, "AAAA": 28, "SRV": 33}
DEFAULT_ORDER = ("LAST", "SRV", "A", "CNAME")  # Kong's dns_order default
# An address of a target: (ip, port, weight); port and weight are None unless an SRV record
# gave them (then they replace the target's own).
Address = tuple[str, int | None, int | None]


class NotFound(OSError):
    """DNS answered that the name has no address (a name error, no records): an answer,
    cached for `dns_not_found_ttl`, unlike a failure to get one (`dns_error_ttl`)."""


class NoSuchName(NotFound):
    """The name does not exist (NXDOMAIN): no other server or record type will know it."""


def _query(name: str, qid: int, rtype: int = 1) -> bytes:
    labels = b"".join(bytes([len(p)]) + p for p in name.rstrip(".").encode("idna").split(b"."))
    return (struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0"
            + struct.pack("!HH", rtype, 1))


def _skip_name(msg: bytes, i: int) -> int:
    while True:
        n = msg[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += n + 1


def _read_name(msg: bytes, i: int) -> str:
    """A (possibly compressed) domain name at `i`, lower-cased, without the final dot."""
    labels: list[str] = []
    for _ in range(128):  # a pointer loop is a malformed message, not a hang
        n = msg[i]
        if n == 0:
            return ".".join(labels).lower()
        if n & 0xC0 == 0xC0:
            i = ((n & 0x3F) << 8) | msg[i + 1]
            continue
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += n + 1
    raise OSError("malformed DNS name")


@dataclass
class Answer:
    """The records of one DNS response: `records` of the type asked (A/AAAA: ip strings;
    SRV: (priority, weight, port, target name)), the addresses the additional section
    gives for names (what a server adds for SRV targets) and the smallest TTL."""

    records: list[Any]
    extra: dict[str, list[str]]
    ttl: float


def parse_answer(msg: bytes, qid: int, rtype: int = 1) -> Answer:
    """Raises NoSuchName for NXDOMAIN and OSError for another error code or a malformed
    message; an answer without records of `rtype` (NODATA) has empty `records`."""
    try:
        rid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", msg)
        if rid != qid or not flags & 0x8000:
            raise OSError("unexpected DNS message")
        if flags & 0xF == 3:
            raise NoSuchName("name error (NXDOMAIN)")
        if flags & 0xF:
            raise OSError(f"DNS error rcode {flags & 0xF}")
        i = 12
        for _ in range(qd):
            i = _skip_name(msg, i) + 4
        records: list[Any] = []
        extra: dict[str, list[str]] = {}
        ttl = float("inf")
        for n in range(an + ns + ar):
            owner = i
            i = _skip_name(msg, i)
            t, _cls, rttl, rdlen = struct.unpack_from("!HHIH", msg, i)
            i += 10
            if n < an and t == rtype:
                ttl = min(ttl, float(rttl))
                if t == 1 and rdlen == 4:
                    records.append(socket.inet_ntop(socket.AF_INET, msg[i:i + 4]))
                elif t == 28 and rdlen == 16:
                    records.append(socket.inet_ntop(socket.AF_INET6, msg[i:i + 16]))
                elif t == 33:
                    prio, weight, port = struct.unpack_from("!HHH", msg, i)
                    records.append((prio, weight, port, _read_name(msg, i + 6)))
            elif n >= an + ns and t in (1, 28) and rdlen in (4, 16):
                family = socket.AF_INET if rdlen == 4 else socket.AF_INET6
                extra.setdefault(_read_name(msg, owner), []).append(
                    socket.inet_ntop(family, msg[i:i + rdlen]))
                ttl = min(ttl, float(rttl))
            i += rdlen
    except (struct.error, IndexError, ValueError) as exc:
        raise OSError("malformed DNS message") from exc
    return Answer(records, extra, ttl)


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
                 nameservers: list[tuple[str, int]] | None = None,
                 order: tuple[str, ...] = DEFAULT_ORDER, valid_ttl: float | None = None,
                 not_found_ttl: float = 30.0, error_ttl: float = 1.0,
                 stale_ttl: float = 3600.0) -> None:
        self.hosts = read_hostsfile(hostsfile) if hostsfile else {}
        self.ttl = ttl
        self.cache: dict[str, _Rotation] = {}  # service hosts: their addresses in turn
        self.nameservers = read_nameservers() if nameservers is None else nameservers
        self.dns_timeout = 2.0
        self.order = order
        self.last: dict[str, str] = {}  # name -> the record type that answered it last
        # Kong's dns_valid_ttl (replaces every record TTL when set), dns_not_found_ttl and
        # dns_error_ttl: how long a service host's answer, or its failure, is kept
        self.valid_ttl = valid_ttl
        self.not_found_ttl = not_found_ttl
        self.error_ttl = error_ttl
        self.failures: dict[str, tuple[float, OSError]] = {}
        # dns_stale_ttl: an expired answer still serves this long while it is looked up
        # again in the background, and while DNS is down
        self.stale_ttl = stale_ttl
        self.refreshing: dict[str, asyncio.Task[None]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Resolver:
        """The resolver the `dns_*` settings describe."""
        return cls(settings.dns_hostsfile, nameservers=list(settings.dns_resolver) or None,
                   order=settings.dns_order, valid_ttl=settings.dns_valid_ttl,
                   not_found_ttl=settings.dns_not_found_ttl, error_ttl=settings.dns_error_ttl,
                   stale_ttl=settings.dns_stale_ttl)

    async def resolve_all(self, host: str) -> tuple[list[Address], float]:
        """Every address of `host` and how long (seconds) the answer may be kept: the
        record types of `dns_order` in turn (LAST: the one that answered this name last
        time), the first with records wins. SRV records give each address its port and
        weight (0 counts as 1); only the lowest priority is used, as RFC 2782 says. When
        DNS gives no address (no nameserver answers, a name error, no records), the system
        resolver (nsswitch: files, a local cache...) is asked, with the fixed `ttl`."""
        ip = self.static(host)
        if ip is not None:
            return [(ip, None, None)], float("inf")
        try:
            addresses, ttl = await self._dns(host)
            return addresses, (ttl if self.valid_ttl is None else self.valid_ttl)
        except OSError as exc:
            dns_error = exc
        loop = asyncio.get_running_loop()
        family = socket.AF_UNSPEC if "AAAA" in self.order else socket.AF_INET
        try:
            infos = await loop.getaddrinfo(host, 80, type=socket.SOCK_STREAM, family=family)
        except OSError as exc:
            # not found when both say so; a DNS failure stays a failure (retried sooner)
            kind = (NotFound if isinstance(dns_error, NotFound)
                    and isinstance(exc, socket.gaierror) else OSError)
            raise kind(f"{host}: {dns_error}; {exc}") from exc
        ips = list(dict.fromkeys(str(i[4][0]) for i in infos))
        if not ips:
            raise OSError(f"no address for {host}")
        return [(i, None, None) for i in ips], self.ttl

    async def _dns(self, host: str) -> tuple[list[Address], float]:
        types: list[str] = []
        for t in self.order:
            if t == "LAST":
                t = self.last.get(host, "")
            if t in RTYPES and t not in types:
                types.append(t)
        for t in types:
            try:
                answer = await self._ask(host, RTYPES[t])
            except NoSuchName as exc:
                raise NoSuchName(f"{host}: {exc}") from exc
            # another OSError: no nameserver answered; they will not for the next type
            if not answer.records:
                continue
            self.last[host] = t
            if t != "SRV":
                return [(r, None, None) for r in answer.records], answer.ttl
            return await self._srv_addresses(answer)
        raise NotFound(f"{host}: no {'/'.join(types)} record")

    async def _srv_addresses(self, answer: Answer) -> tuple[list[Address], float]:
        best = min(r[0] for r in answer.records)
        out: list[Address] = []
        ttl = answer.ttl
        for _prio, weight, port, target in (r for r in answer.records if r[0] == best):
            ips = answer.extra.get(target)
            if ips is None:
                ips, t_ttl = await self._addresses(target)
                ttl = min(ttl, t_ttl)
            out += [(ip, port, weight or 1) for ip in ips]
        return out, ttl

    async def _addresses(self, name: str) -> tuple[list[str], float]:
        """The A (and, when dns_order names it, AAAA) addresses of an SRV target."""
        ip = self.static(name)
        if ip is not None:
            return [ip], float("inf")
        types = [RTYPES[t] for t in self.order if t in ("A", "AAAA")] or [1]
        for rtype in dict.fromkeys(types):
            answer = await self._ask(name, rtype)
            if answer.records:
                return answer.records, answer.ttl
        raise OSError(f"SRV target {name}: no address record")

    async def _ask(self, host: str, rtype: int) -> Answer:
        """One question to the nameservers in turn; OSError when none answers."""
        loop = asyncio.get_running_loop()
        last: OSError = OSError("no nameserver")
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
                transport.sendto(_query(host, qid, rtype))
                msg = await asyncio.wait_for(fut, self.dns_timeout)
                return parse_answer(msg, qid, rtype)
            except NoSuchName:
                raise  # NXDOMAIN is an answer: no other server will know better
            except (OSError, TimeoutError) as exc:
                last = exc if isinstance(exc, OSError) else OSError("DNS timeout")
            finally:
                transport.close()
        raise last

    def static(self, host: str) -> str | None:
        return self.hosts.get(host.lower())

    async def resolve(self, host: str, port: int, sni: str | None,
                      tls_key: tuple[object, ...] | None = None) -> Origin:
        """The address to connect to for a service `host` that is no upstream: the answer
        of `resolve_all`, kept for its TTL and taken in turn (weighted for SRV records, whose
        port replaces the service's), as Kong's resolver hands out a name's addresses."""
        ip = self.static(host)
        if ip is not None:
            return (ip, port, sni, tls_key)
        loop = asyncio.get_running_loop()
        now = loop.time()
        hit = self.cache.get(host)
        if hit is not None and hit.expires <= now < hit.expires + self.stale_ttl:
            # expired but not stale for long: served while a lookup runs in the background
            if host not in self.refreshing:
                task = loop.create_task(self._refresh(host))
                self.refreshing[host] = task
        elif hit is None or hit.expires <= now:
            failed = self.failures.get(host)
            if failed is not None and failed[0] > now:
                # a name that just failed is not asked again for every request
                raise type(failed[1])(str(failed[1]))
            try:
                addresses, ttl = await self.resolve_all(host)
            except OSError as exc:
                keep = self.not_found_ttl if isinstance(exc, NotFound) else self.error_ttl
                if len(self.failures) > 10_000:
                    self.failures.clear()
                self.failures[host] = (loop.time() + keep, exc)
                raise
            self.failures.pop(host, None)
            hit = self.cache[host] = _Rotation(now + max(ttl, 1.0), addresses)
        addr, srv_port = hit.next()
        return (addr, port if srv_port is None else srv_port, sni, tls_key)

    async def close(self) -> None:
        """Cancel the background lookups still running: a stopping worker leaves none
        pending (asyncio would log each as a task destroyed while pending)."""
        tasks = list(self.refreshing.values())
        self.refreshing.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _refresh(self, host: str) -> None:
        """The background lookup of an expired service host: a new answer replaces the
        stale one; a failure keeps it until it is stale for longer than `stale_ttl`."""
        try:
            addresses, ttl = await self.resolve_all(host)
        except OSError:
            pass
        else:
            now = asyncio.get_running_loop().time()
            self.cache[host] = _Rotation(now + max(ttl, 1.0), addresses)
        finally:
            self.refreshing.pop(host, None)


class _Rotation:
    """A name's addresses for `Resolver.resolve`, handed out round-robin (each as often as
    its SRV weight, reduced by their common divisor)."""

    __slots__ = ("expires", "i", "wheel")

    def __init__(self, expires: float, addresses: list[Address]) -> None:
        self.expires = expires
        g = 0
        for _, _, w in addresses:
            g = math.gcd(g, w or 1)
        self.wheel = [(ip, port) for ip, port, w in addresses for _ in range((w or 1) // g)]
        self.i = 0

    def next(self) -> tuple[str, int | None]:
        wheel = self.wheel
        i = self.i
        self.i = (i + 1) % len(wheel)
        return wheel[i]
