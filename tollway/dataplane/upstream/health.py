"""Health of upstream addresses: Kong's `healthchecks` record (lua-resty-healthcheck rules).

Counters are kept per address on the `Peer` itself (balancer.py) so the hot path reads one
attribute (`peer.healthy`). Both sources feed the same counters, each with its own thresholds:

* passive — every upstream attempt reports its outcome (`Peer.outcome` / `Peer.failed`,
  called from `UpstreamConnection` and `Exchange._connect`): a status in
  `passive.unhealthy.http_statuses` is an HTTP failure, in `passive.healthy.http_statuses` a
  success; a connect error / reset is a TCP failure; a timeout is a timeout;
* active — `probe` sends `GET <http_path>` (or only connects, `type: tcp`) every
  `healthy.interval` seconds to healthy addresses and every `unhealthy.interval` seconds to
  unhealthy ones, classified with the `active` lists.

A success resets the failure counters and a failure resets the success counter; crossing a
non-zero threshold flips the state. Health is **per worker** (Kong shares it per node through
shm): every worker probes on its own and sees its own traffic, so workers converge within one
probe interval. The Admin API and `gateway_upstream_target_health` report the node's view
(an address unhealthy on any worker is reported unhealthy).

Unlike Kong, an address marked unhealthy by passive checks is never stuck: when no active
probe of unhealthy addresses is configured (`active.unhealthy.interval: 0`), it gets one
trial request (half-open) every `HALF_OPEN_AFTER` seconds; a non-failing answer marks it
healthy again, a failure restarts the wait.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tollway.dataplane.upstream.balancer import Peer

HALF_OPEN_AFTER = 10.0  # seconds an address marked unhealthy by passive checks waits for a trial

# What a probe or an attempt found (beyond an HTTP status).
TCP_FAILURE = "tcp"
TIMEOUT = "timeout"
CONNECTED = "ok"  # a `type: tcp` probe connected: a success whatever the status lists say


@dataclass(frozen=True, slots=True)
class Thresholds:
    healthy_statuses: frozenset[int]
    successes: int
    unhealthy_statuses: frozenset[int]
    tcp_failures: int
    timeouts: int
    http_failures: int

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Thresholds:
        h, u = rec.get("healthy") or {}, rec.get("unhealthy") or {}
        return cls(frozenset(h.get("http_statuses") or ()), int(h.get("successes") or 0),
                   frozenset(u.get("http_statuses") or ()), int(u.get("tcp_failures") or 0),
                   int(u.get("timeouts") or 0), int(u.get("http_failures") or 0))

    def counts_failures(self) -> bool:
        return bool(self.tcp_failures or self.timeouts or self.http_failures)


@dataclass(frozen=True, slots=True)
class HealthConfig:
    enabled: bool  # Kong: off unless an interval or a passive failure threshold is set
    threshold: float  # % of the total weight that must be available
    probe_type: str  # tcp | http | https (grpc/grpcs are probed as http/https)
    timeout: float
    concurrency: int
    http_path: str
    https_sni: str | None
    verify: bool
    headers: bytes  # extra probe header lines, ready to send
    healthy_interval: float
    unhealthy_interval: float
    active: Thresholds
    passive: Thresholds

    @classmethod
    def from_upstream(cls, upstream: dict[str, Any]) -> HealthConfig:
        hc = upstream.get("healthchecks") or {}
        act = hc.get("active") or {}
        act_h, act_u = act.get("healthy") or {}, act.get("unhealthy") or {}
        active = Thresholds.from_record(act)
        passive = Thresholds.from_record(hc.get("passive") or {})
        healthy_interval = float(act_h.get("interval") or 0)
        unhealthy_interval = float(act_u.get("interval") or 0)
        lines = []
        for name, values in (act.get("headers") or {}).items():
            for v in values if isinstance(values, list) else [values]:
                lines.append(f"{name}: {v}\r\n".encode("latin-1"))
        ptype = str(act.get("type") or "http")
        return cls(
            enabled=bool(healthy_interval or unhealthy_interval or passive.counts_failures()),
            threshold=float(hc.get("threshold") or 0),
            probe_type={"grpc": "http", "grpcs": "https"}.get(ptype, ptype),
            timeout=float(act.get("timeout") or 1), concurrency=int(act.get("concurrency") or 10),
            http_path=str(act.get("http_path") or "/"), https_sni=act.get("https_sni"),
            verify=act.get("https_verify_certificate", True) is not False,
            headers=b"".join(lines), healthy_interval=healthy_interval,
            unhealthy_interval=unhealthy_interval, active=active, passive=passive)


def classify(peer: Peer, rules: Thresholds, status: int | str, now: float) -> None:
    """Count one observation of `peer` against `rules`; flip its state on a threshold."""
    if status == CONNECTED or (isinstance(status, int) and status in rules.healthy_statuses):
        peer.tcp = peer.http = peer.timeouts = 0
        peer.successes += 1
        if not peer.healthy and rules.successes and peer.successes >= rules.successes:
            peer.set_healthy(True, f"{peer.successes} successes")
        return
    if status == TCP_FAILURE:
        peer.tcp += 1
        count, limit, what = peer.tcp, rules.tcp_failures, "TCP failures"
    elif status == TIMEOUT:
        peer.timeouts += 1
        count, limit, what = peer.timeouts, rules.timeouts, "timeouts"
    elif isinstance(status, int) and status in rules.unhealthy_statuses:
        peer.http += 1
        count, limit, what = peer.http, rules.http_failures, f"HTTP failures (last {status})"
    else:
        return  # neither list: not an observation
    peer.successes = 0
    if peer.healthy and limit and count >= limit:
        peer.down_since = now
        peer.set_healthy(False, f"{count} {what}")


async def probe(peer: Peer, cfg: HealthConfig, host_header: str) -> int | str:
    """One active check of `peer`: an HTTP status, TCP_FAILURE or TIMEOUT."""
    tls = cfg.probe_type == "https"
    ctx: ssl.SSLContext | None = None
    if tls:
        ctx = ssl.create_default_context()
        if not cfg.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(cfg.timeout):
            try:
                reader, writer = await asyncio.open_connection(
                    peer.ip, peer.port, ssl=ctx,
                    server_hostname=(cfg.https_sni or peer.host) if tls else None)
            except (OSError, ssl.SSLError):
                return TCP_FAILURE
            if cfg.probe_type == "tcp":
                return CONNECTED
            writer.write(b"GET " + cfg.http_path.encode() + b" HTTP/1.0\r\nHost: "
                         + host_header.encode("idna") + b"\r\nUser-Agent: tollway-healthcheck"
                         + b"\r\nConnection: close\r\n" + cfg.headers + b"\r\n")
            try:
                line = await reader.readline()
            except (OSError, ssl.SSLError):
                return TCP_FAILURE
            parts = line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
                return TCP_FAILURE
            return int(parts[1])
    except TimeoutError:
        return TIMEOUT
    finally:
        if writer is not None:
            writer.close()
