"""ip-restriction (Kong §3.7): deny first, then allow.

The client address is `req.client_ip` (after trusted_ips / real_ip_header, as nginx's
$binary_remote_addr after the realip module). Networks are parsed once per config; a verdict
per address is cached, so a request costs one dict lookup.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from tollway.plugins.base import BuildContext, Plugin
from tollway.plugins.ip_restriction.schema import config_schema

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
CACHE_SIZE = 10_000
UNIX_SOCKET = ("Cannot identify the client IP address, unix domain sockets are not "
               "supported.")


def _networks(values: list[str] | None) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values or ())


def _contains(networks: tuple[Network, ...], addr: ipaddress.IPv4Address |
              ipaddress.IPv6Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        mapped = addr.ipv4_mapped
        if any(mapped in n for n in networks if n.version == 4):
            return True
    return any(addr in n for n in networks if n.version == addr.version)


class IpRestrictionPlugin(Plugin):
    name = "ip-restriction"
    priority = 990
    version = "3.9.0"
    config_schema = config_schema
    protocols = ("http", "https", "tcp", "tls", "grpc", "grpcs")

    def __init__(self, config: dict[str, Any], entity: dict[str, Any],
                 ctx: BuildContext | None = None) -> None:
        super().__init__(config, entity, ctx)
        self.allow = _networks(config.get("allow"))
        self.deny = _networks(config.get("deny"))
        status = config.get("status")
        self.deny_status = int(status) if status is not None else 403
        self.message: str | None = config.get("message")
        self.cache: dict[str, bool] = {}

    def _blocked(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return True  # not an address (cannot happen for a TCP peer)
        if self.deny and _contains(self.deny, addr):
            return True
        return bool(self.allow) and not _contains(self.allow, addr)

    def access(self, req: Any) -> None:
        ip = req.client_ip
        if not ip:
            req.error(403, UNIX_SOCKET)
            return
        cache = self.cache
        blocked = cache.get(ip)
        if blocked is None:
            blocked = self._blocked(ip)
            if len(cache) >= CACHE_SIZE:
                cache.clear()
            cache[ip] = blocked
        if blocked:
            req.error(self.deny_status, self.message or f"IP address not allowed: {ip}")
