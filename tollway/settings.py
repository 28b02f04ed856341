"""Node settings: `tollway.conf` (kong.conf syntax) overridden by `TOLLWAY_*` variables.

Names follow kong.conf wherever Kong has the setting, so a platform team can carry its
`KONG_*` habits over by changing the prefix. Settings are loaded once, validated, and turned
into plain attributes; nothing on the request path reads the environment.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "TOLLWAY_"

# Every setting with its default, as a string in kong.conf syntax (the conf file and the
# environment both speak strings; parsing happens once, below).
DEFAULTS: dict[str, str] = {
    "prefix": ".tollway",
    "database": "sqlite",  # sqlite (embedded default) | postgres | off (DB-less)
    "declarative_config": "",
    "proxy_listen": "0.0.0.0:8000",
    "admin_listen": "127.0.0.1:8001",
    "status_listen": "off",
    "workers": "auto",
    "proxy_access_log": "/dev/stdout",
    "proxy_error_log": "/dev/stderr",
    "admin_access_log": "off",
    "log_level": "notice",
    "trusted_ips": "",
    "real_ip_header": "X-Real-IP",
    "real_ip_recursive": "off",
    "headers": "server_tokens, latency_tokens, x-tollway-request-id",
    "dns_hostsfile": "/etc/hosts",
    "dns_resolver": "",
    "dns_order": "LAST,SRV,A,CNAME",
    "dns_valid_ttl": "",
    "dns_not_found_ttl": "30",
    "dns_error_ttl": "1",
    "dns_stale_ttl": "3600",
    "nginx_http_client_max_body_size": "0",
    "upstream_keepalive_pool_size": "512",
    "upstream_keepalive_max_requests": "1000",
    "upstream_keepalive_idle_timeout": "60",
    "graceful_timeout": "10",
    "pg_host": "127.0.0.1",
    "pg_port": "5432",
    "pg_user": "tollway",
    "pg_password": "",
    "pg_database": "tollway",
    "pg_timeout": "5000",  # ms, connecting to PostgreSQL (kong.conf pg_timeout)
    "pg_ssl": "off",  # on: sslmode=require
    "plugins": "bundled",
    # Admin API tokens (tollway.controlplane.admin.auth; DECISIONS.md #6)
    "admin_token": "",
    "admin_tokens_file": "",
    "admin_listen_allow_insecure": "off",
    # TLS listeners (tollway.dataplane.tls): the default certificate (else one generated
    # under <prefix>/ssl/), protocols, and TLS 1.2 ciphers (Kong's "intermediate" suite).
    "ssl_cert": "",
    "ssl_cert_key": "",
    "ssl_protocols": "TLSv1.2 TLSv1.3",
    "ssl_ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                   "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                   "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                   "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384",
}

# Kong's `headers` tokens, with Tollway in place of Kong (DECISIONS.md #7).
SERVER_TOKENS = ("via", "server")
LATENCY_TOKENS = ("x-tollway-proxy-latency", "x-tollway-upstream-latency",
                  "x-tollway-response-latency")
HEADER_TOKENS = {
    "server_tokens": SERVER_TOKENS,
    "latency_tokens": LATENCY_TOKENS,
    "x-tollway-request-id": ("x-tollway-request-id",),
}
KNOWN_HEADERS = {*SERVER_TOKENS, *LATENCY_TOKENS, "x-tollway-request-id",
                 "x-tollway-upstream-status"}


DNS_TYPES = ("A", "AAAA", "SRV")  # what dns_order may name besides LAST and CNAME


class SettingsError(ValueError):
    """A setting has a bad value; the message names the setting."""


@dataclass(frozen=True)
class Listen:
    host: str
    port: int
    ssl: bool = False
    reuseport: bool = True
    http2: bool = False  # Kong's `http2` flag: offer h2 by ALPN on an ssl listener

    def __str__(self) -> str:
        return (f"{self.host}:{self.port}{' http2' if self.http2 else ''}"
                f"{' ssl' if self.ssl else ''}")


@dataclass(frozen=True)
class Settings:
    values: Mapping[str, str]
    prefix: Path
    database: str
    declarative_config: str
    proxy_listen: tuple[Listen, ...]
    admin_listen: tuple[Listen, ...]
    status_listen: tuple[Listen, ...]
    workers: int
    proxy_access_log: str
    proxy_error_log: str
    admin_access_log: str
    trusted_ips: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    real_ip_header: str
    real_ip_recursive: bool
    headers: frozenset[str]
    dns_hostsfile: str
    dns_resolver: tuple[tuple[str, int], ...]  # empty: the nameservers of /etc/resolv.conf
    dns_order: tuple[str, ...]
    dns_valid_ttl: float | None  # None: each record's own TTL
    dns_not_found_ttl: float
    dns_error_ttl: float
    dns_stale_ttl: float
    client_max_body_size: int
    keepalive_pool_size: int
    keepalive_max_requests: int
    keepalive_idle_timeout: float
    graceful_timeout: float
    extra: dict[str, str] = field(default_factory=dict)

    def to_env(self) -> dict[str, str]:
        """The settings as TOLLWAY_* variables, so a worker process sees the same node."""
        return {ENV_PREFIX + k.upper(): v for k, v in self.values.items()}

    def public(self) -> dict[str, object]:
        """What `GET /` shows under `configuration` (no secrets)."""
        return {k: ("******" if "password" in k else v) for k, v in sorted(self.values.items())}


def parse_conf_text(text: str, source: str = "tollway.conf") -> dict[str, str]:
    """kong.conf syntax: `key = value`, `#` starts a comment (`\\#` is a literal #)."""
    out: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.replace("\\#", "\0").split("#", 1)[0].replace("\0", "#").strip()
        if not line:
            continue
        if "=" not in line:
            raise SettingsError(f"{source}:{lineno}: expected 'key = value', got {raw.strip()!r}")
        key, value = (p.strip() for p in line.split("=", 1))
        out[key.lower()] = value
    return out


def _listens(name: str, value: str, default_port: int) -> tuple[Listen, ...]:
    if value.strip().lower() == "off":
        return ()
    out = []
    for part in value.split(","):
        words = part.split()
        if not words:
            continue
        addr, flags = words[0], {w.lower() for w in words[1:]}
        host, sep, port_s = addr.rpartition(":")
        if not sep:
            host, port_s = addr, str(default_port)
        host = host.strip("[]")
        try:
            port = int(port_s)
            if not 0 <= port <= 65535:
                raise ValueError
        except ValueError:
            raise SettingsError(f"{name}: invalid port in {part.strip()!r}") from None
        out.append(Listen(host or "0.0.0.0", port, "ssl" in flags, http2="http2" in flags))
    return tuple(out)


ANY_HOSTS = ("0.0.0.0", "::", "*")


def _distinct_listens(named: dict[str, tuple[Listen, ...]]) -> None:
    """Two settings may not listen on the same address: the proxy's workers bind with
    SO_REUSEPORT, so the admin or status listener would bind too and share connections
    with the proxy (nginx refuses such a duplicate `listen` at start)."""
    seen: list[tuple[str, Listen]] = []
    for name, listens in named.items():
        for ln in listens:
            if ln.port == 0:
                continue  # an ephemeral port: never the same twice
            for other_name, other in seen:
                if other_name != name and other.port == ln.port and (
                        other.host == ln.host or other.host in ANY_HOSTS
                        or ln.host in ANY_HOSTS):
                    raise SettingsError(f"{name}: {ln.host}:{ln.port} is also in "
                                        f"{other_name} ({other.host}:{other.port})")
            seen.append((name, ln))


def parse_order(value: str) -> tuple[str, ...]:
    """The `dns_order` setting: record types to try, in order."""
    out = []
    for token in (t.strip().upper() for t in value.split(",")):
        if not token:
            continue
        if token not in DNS_TYPES and token not in ("LAST", "CNAME"):
            raise ValueError(f"dns_order: invalid record type {token!r} (expected LAST, SRV, "
                             "A, AAAA or CNAME)")
        out.append(token)
    if not any(t in DNS_TYPES for t in out):
        raise ValueError("dns_order: names none of SRV, A, AAAA")
    return tuple(out)


def parse_nameservers(value: str) -> list[tuple[str, int]]:
    """The `dns_resolver` setting: `ip[:port]` entries, comma-separated (`[v6]:port`)."""
    out: list[tuple[str, int]] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        host, port = part, 53
        if part.startswith("["):
            host, _, rest = part[1:].partition("]")
            if rest:
                port = _port(part, rest.lstrip(":"))
        elif part.count(":") == 1:
            host, _, p = part.partition(":")
            port = _port(part, p)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"dns_resolver: {part!r} is not an IP address[:port]") from None
        out.append((host, port))
    return out


def _port(part: str, text: str) -> int:
    if text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    raise ValueError(f"dns_resolver: invalid port in {part!r}")


def _checked(parse: Callable[[str], Any], value: str) -> Any:
    try:
        out = parse(value)
    except ValueError as exc:  # the message names the setting
        raise SettingsError(str(exc)) from None
    return tuple(out)


def _seconds(name: str, value: str) -> float:
    try:
        n = float(value)
    except ValueError:
        raise SettingsError(f"{name}: expected a number of seconds, got {value!r}") from None
    if not 0 <= n < float("inf"):
        raise SettingsError(f"{name}: must be a number of seconds >= 0, got {value!r}")
    return n


def _bool(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("on", "true", "yes", "1"):
        return True
    if v in ("off", "false", "no", "0"):
        return False
    raise SettingsError(f"{name}: expected on or off, got {value!r}")


def _int(name: str, value: str, minimum: int = 0) -> int:
    try:
        n = int(value)
    except ValueError:
        raise SettingsError(f"{name}: expected an integer, got {value!r}") from None
    if n < minimum:
        raise SettingsError(f"{name}: must be at least {minimum}, got {n}")
    return n


def _size(name: str, value: str) -> int:
    v = value.strip().lower()
    mult = {"k": 1024, "m": 1024**2, "g": 1024**3}.get(v[-1:], 1)
    return _int(name, v[:-1] if mult > 1 else v) * mult


def _headers(value: str) -> frozenset[str]:
    out: set[str] = set()
    for token in (t.strip().lower() for t in value.split(",")):
        if not token or token == "off":
            continue
        if token in HEADER_TOKENS:
            out.update(HEADER_TOKENS[token])
        elif token in KNOWN_HEADERS:
            out.add(token)
        else:
            raise SettingsError(f"headers: invalid header token {token!r}")
    return frozenset(out)


def _trusted(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    nets = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        if part == "unix:":
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SettingsError(f"trusted_ips: invalid ip or cidr range: {part!r}") from None
    return tuple(nets)


def load(conf_path: str | None = None, env: Mapping[str, str] | None = None,
         overrides: Mapping[str, str] | None = None) -> Settings:
    """Defaults < conf file < TOLLWAY_* environment < explicit overrides (CLI flags)."""
    env = os.environ if env is None else env
    values = dict(DEFAULTS)
    path = conf_path or env.get(ENV_PREFIX + "CONF")
    if path:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise SettingsError(f"cannot read configuration file {path}: {exc.strerror}") from exc
        for key, value in parse_conf_text(text, path).items():
            if key not in DEFAULTS:
                raise SettingsError(f"{path}: unknown setting {key!r}")
            values[key] = value
    for key in DEFAULTS:
        if ENV_PREFIX + key.upper() in env:
            values[key] = env[ENV_PREFIX + key.upper()]
    values.update(overrides or {})

    database = values["database"].strip().lower()
    if database not in ("sqlite", "postgres", "off"):
        raise SettingsError(f"database: expected one of: sqlite, postgres, off; got {database!r}")
    workers_s = values["workers"].strip().lower()
    workers = (os.cpu_count() or 1) if workers_s == "auto" else _int("workers", workers_s, 1)
    listens = {name: _listens(name, values[name], port) for name, port in (
        ("proxy_listen", 8000), ("admin_listen", 8001), ("status_listen", 8100))}
    _distinct_listens(listens)
    return Settings(
        values=values,
        prefix=Path(values["prefix"]).absolute(),
        database=database,
        declarative_config=values["declarative_config"],
        proxy_listen=listens["proxy_listen"],
        admin_listen=listens["admin_listen"],
        status_listen=listens["status_listen"],
        workers=workers,
        proxy_access_log=values["proxy_access_log"].strip(),
        proxy_error_log=values["proxy_error_log"].strip(),
        admin_access_log=values["admin_access_log"].strip(),
        trusted_ips=_trusted(values["trusted_ips"]),
        real_ip_header=values["real_ip_header"].strip(),
        real_ip_recursive=_bool("real_ip_recursive", values["real_ip_recursive"]),
        headers=_headers(values["headers"]),
        dns_hostsfile=values["dns_hostsfile"].strip(),
        dns_resolver=_checked(parse_nameservers, values["dns_resolver"]),
        dns_order=_checked(parse_order, values["dns_order"]),
        dns_valid_ttl=(_seconds("dns_valid_ttl", values["dns_valid_ttl"])
                       if values["dns_valid_ttl"].strip() else None),
        dns_not_found_ttl=_seconds("dns_not_found_ttl", values["dns_not_found_ttl"]),
        dns_error_ttl=_seconds("dns_error_ttl", values["dns_error_ttl"]),
        dns_stale_ttl=_seconds("dns_stale_ttl", values["dns_stale_ttl"]),
        client_max_body_size=_size("nginx_http_client_max_body_size",
                                   values["nginx_http_client_max_body_size"]),
        keepalive_pool_size=_int("upstream_keepalive_pool_size",
                                 values["upstream_keepalive_pool_size"]),
        keepalive_max_requests=_int("upstream_keepalive_max_requests",
                                    values["upstream_keepalive_max_requests"]),
        keepalive_idle_timeout=float(_int("upstream_keepalive_idle_timeout",
                                          values["upstream_keepalive_idle_timeout"])),
        graceful_timeout=float(_int("graceful_timeout", values["graceful_timeout"])),
    )
