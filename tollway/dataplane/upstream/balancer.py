"""Kong's ring-balancer: an upstream's targets, their addresses and the four algorithms.

    Snapshot ── BalancerRegistry (per worker, outlives snapshots) ── Balancer per upstream
                                                                      ├─ peers (one per address)
                                                                      ├─ wheel / ring (precomputed)
                                                                      └─ task: probes + DNS refresh

* round-robin: a wheel where each address appears weight/gcd times, shuffled once; a pointer
  walks it, skipping unusable addresses — `pick` is an index and an attribute read.
* consistent-hashing: `slots` x POINTS_PER_SLOT points on a ring, shared out by weight; the
  request's key (hash_on, then hash_fallback) is hashed and bisected onto the ring, walking
  on past unusable addresses.
* least-connections: the lowest (active attempts + 1) / weight; ties rotate.
* latency: the better (peak-EWMA of response time, 10 s decay) / weight of two random
  candidates.

A retry avoids the addresses this request already tried while others are usable. A
balancer survives config swaps when its upstream and targets did not change (the registry is
keyed by name + a hash of the definition): round-robin position and health carry on. A
changed upstream gets a new balancer that inherits the health of addresses it still has.
Hostname targets are resolved with their DNS TTL (`Resolver.resolve_all`) and re-resolved
when it expires; each address gets the target's weight, or an SRV record's port and weight.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import random
import uuid
from bisect import bisect_right
from typing import TYPE_CHECKING, Any

from tollway import metrics
from tollway.config.typedefs import is_ip, split_host_port
from tollway.dataplane.upstream import health
from tollway.dataplane.upstream.health import HealthConfig, classify

if TYPE_CHECKING:
    from tollway.dataplane.proxy import Exchange
    from tollway.dataplane.resolver import Address, Resolver
    from tollway.dataplane.upstream.pool import Origin

log = logging.getLogger("tollway.balancer")

REGISTRY_KEY = "tollway.balancers"
EWMA_DECAY = 10.0  # seconds (Kong's latency balancer)
DNS_RETRY = 5.0  # seconds before a failed resolution is tried again


POINTS_PER_SLOT = 10


def _h32(data: str) -> int:
    return int.from_bytes(hashlib.blake2b(data.encode("utf-8", "surrogateescape"),
                                          digest_size=4).digest(), "big")


class Peer:
    """One address (ip:port) of a target, with its health counters and load figures."""

    __slots__ = ("active", "down_since", "ewma", "ewma_t", "healthy", "host", "http", "ip",
                 "origin", "owner", "port", "successes", "target", "tcp", "timeouts", "trial",
                 "weight")

    def __init__(self, owner: Balancer, target: str, host: str, ip: str, port: int,
                 weight: int) -> None:
        self.owner = owner
        self.target = target  # "host:port" as configured
        self.host = host
        self.ip = ip
        self.port = port
        self.weight = weight
        # plain HTTP; an https service adds its TLS name and settings (peer_origin)
        self.origin: Origin = (ip, port, None, None)
        self.healthy = True
        self.successes = self.tcp = self.http = self.timeouts = 0
        self.down_since = 0.0
        self.trial = 0.0  # when a half-open trial request was sent (0: none in flight)
        self.active = 0
        self.ewma = 0.0
        self.ewma_t = 0.0

    @property
    def address(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"

    def usable(self, now: float) -> bool:
        if self.healthy:
            return True
        # half-open: passive-only health gets a trial request now and then (health.py)
        owner = self.owner
        if owner.health.unhealthy_interval or now - self.down_since < health.HALF_OPEN_AFTER:
            return False
        return not self.trial or now - self.trial > health.HALF_OPEN_AFTER

    def set_healthy(self, healthy: bool, why: str) -> None:
        if healthy == self.healthy:
            return
        self.healthy = healthy
        self.trial = 0.0
        owner = self.owner
        owner.available_weight += self.weight if healthy else -self.weight
        (log.info if healthy else log.warning)(
            "upstream %s target %s (%s) is %s: %s", owner.name, self.target, self.address,
            "healthy" if healthy else "unhealthy", why)
        owner.publish(self)

    def set_manual(self, healthy: bool) -> None:
        """`PUT /upstreams/{u}/targets/{t}/healthy|unhealthy` (Kong §4.6)."""
        self.set_healthy(healthy, "set through the Admin API")
        if not healthy:
            # No half-open trial requests (usable()): a target marked unhealthy by hand
            # stays out of rotation until marked healthy (or a health check revives it).
            self.trial = math.inf

    # -- outcomes of an attempt (passive checks, latency, connection counts) ---------------
    def outcome(self, status: int, elapsed: float) -> None:
        """The upstream answered with `status` after `elapsed` seconds."""
        owner = self.owner
        now = owner.loop_time()
        if owner.algorithm == "latency":
            w = math.exp(-(now - self.ewma_t) / EWMA_DECAY) if self.ewma_t else 0.0
            self.ewma = elapsed if elapsed > self.ewma else self.ewma * w + elapsed * (1 - w)
            self.ewma_t = now
        if self.trial:
            if status in owner.health.passive.unhealthy_statuses:
                self.trial = 0.0
                self.down_since = now
            else:
                self.set_healthy(True, "half-open trial request succeeded")
                return
        if owner.health.enabled:
            classify(self, owner.health.passive, status, now)

    def failed(self, kind: str) -> None:
        """The attempt failed: health.TCP_FAILURE (connect, reset, bad response) or TIMEOUT."""
        owner = self.owner
        now = owner.loop_time()
        if owner.algorithm == "latency":
            self.ewma = max(self.ewma * 2, 1.0)  # a failing address looks slow
            self.ewma_t = now
        if self.trial:
            self.trial = 0.0
            self.down_since = now
        if owner.health.enabled:
            classify(self, owner.health.passive, kind, now)

    def release(self) -> None:
        if self.active > 0:
            self.active -= 1


class Balancer:
    def __init__(self, upstream: dict[str, Any], targets: list[dict[str, Any]],
                 key: str, resolver: Resolver | None, worker: dict[str, Any]) -> None:
        self.key = key
        self.name: str = upstream["name"]
        self.upstream = upstream
        self.algorithm: str = upstream.get("algorithm") or "round-robin"
        self.health = HealthConfig.from_upstream(upstream)
        self.slots = int(upstream.get("slots") or 10000)
        self.hash_on = self._hash_spec(upstream, "hash_on")
        self.hash_fallback = self._hash_spec(upstream, "hash_fallback")
        self.cookie_path = upstream.get("hash_on_cookie_path") or "/"
        self.resolver = resolver
        self.worker = worker
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None
        # target string -> (host, port, weight); hostnames also get a DNS expiry
        self.targets: list[tuple[str, str, int, int]] = []
        for t in targets:
            parts = split_host_port(t["target"])
            if parts is None:
                continue
            host, port = parts[0].strip("[]"), int(parts[1]) if parts[1] else 8000
            self.targets.append((t["target"], host, port, int(t.get("weight", 100))))
        self.dns_expiry: dict[str, float] = {}
        # the last DNS answer per target host name: its addresses until the next one
        self.dns_answers: dict[str, list[Address]] = {}
        self.dns_errors: set[str] = set()  # targets whose last resolution failed
        self.peers: list[Peer] = []
        self.wheel: list[Peer] = []
        self.pointer = 0
        self.ring: list[int] = []
        self.ring_peers: list[Peer] = []
        self.total_weight = 0
        self.available_weight = 0
        self.rotate = 0
        self._build_peers({})

    @staticmethod
    def _hash_spec(up: dict[str, Any], field: str) -> tuple[str, str | None]:
        kind = up.get(field) or "none"
        arg = {"header": up.get(f"{field}_header"), "cookie": up.get("hash_on_cookie"),
               "query_arg": up.get(f"{field}_query_arg"),
               "uri_capture": up.get(f"{field}_uri_capture")}.get(kind)
        return kind, arg

    def loop_time(self) -> float:
        loop = self.loop
        if loop is None:
            try:
                loop = self.loop = asyncio.get_running_loop()
            except RuntimeError:
                return 0.0
        return loop.time()

    # -- building -------------------------------------------------------------------------
    def _build_peers(self, previous: dict[tuple[str, int], Peer],
                     resolved: dict[str, list[Address]] | None = None) -> None:
        """(Re)build the addresses and the wheel/ring. `previous` peers keep their health."""
        old = {(p.ip, p.port): p for p in self.peers}
        old.update(previous)
        peers: list[Peer] = []
        for target, host, port, weight in self.targets:
            addresses: list[Address]
            if is_ip(host):
                addresses = [(host, None, None)]
            elif resolved is not None and host in resolved:
                addresses = resolved[host]
            else:
                static = self.resolver.static(host) if self.resolver is not None else None
                if static is not None:
                    addresses = [(static, None, None)]
                    self.dns_expiry[host] = math.inf
                else:
                    # keep what we had until the next answer; none yet: resolved by the task
                    addresses = [(p.ip, p.port, p.weight) for p in self.peers
                                 if p.target == target]
                    self.dns_expiry.setdefault(host, 0.0)
            for ip, srv_port, srv_weight in addresses:
                # an SRV record's port and weight replace the target's; a target of
                # weight 0 stays off whatever its records say
                a_port = port if srv_port is None else srv_port
                a_weight = weight if srv_weight is None or weight == 0 else srv_weight
                prev = old.get((ip, a_port))
                p = Peer(self, target, host, ip, a_port, a_weight)
                if prev is not None:
                    p.healthy, p.down_since = prev.healthy, prev.down_since
                    p.successes, p.tcp, p.http, p.timeouts = (
                        prev.successes, prev.tcp, prev.http, prev.timeouts)
                    p.active, p.ewma, p.ewma_t = prev.active, prev.ewma, prev.ewma_t
                peers.append(p)
        self.peers = peers
        live = [p for p in peers if p.weight > 0]
        self.total_weight = sum(p.weight for p in peers)
        self.available_weight = sum(p.weight for p in peers if p.healthy)
        # round-robin wheel
        g = 0
        for p in live:
            g = math.gcd(g, p.weight)
        wheel = [p for p in live for _ in range(p.weight // g)] if live else []
        random.shuffle(wheel)
        self.wheel = wheel
        self.pointer = random.randrange(len(wheel)) if wheel else 0
        # consistent-hashing ring: POINTS_PER_SLOT x `slots` points shared out by weight.
        # A target's share is the length of the arcs its points own; with one point per
        # slot that length strays by a few percent from its weight (a 20 % target measured
        # 18.9 % over 10,000 keys), ten per slot keep it within the issue's ±5 %.
        if self.algorithm == "consistent-hashing" and live:
            total = sum(p.weight for p in live)
            points: list[tuple[int, str, int]] = []
            for i, p in enumerate(live):
                n = max(1, round(p.weight / total * self.slots * POINTS_PER_SLOT))
                a = p.address
                points += [(_h32(f"{a} {k}"), a, i) for k in range(n)]
            # 100,000 32-bit points collide about once a ring: ties break on the address,
            # not the position in the target list, so every node builds the same ring
            points.sort()
            self.ring = [h for h, _, _ in points]
            self.ring_peers = [live[i] for _, _, i in points]
        else:
            self.ring, self.ring_peers = [], []
        for p in peers:
            self.publish(p)

    def publish(self, peer: Peer) -> None:
        state = ("healthchecks_off" if not self.health.enabled
                 else "healthy" if peer.healthy else "unhealthy")
        metrics.set_upstream_target_health(metrics.for_worker(self.worker), self.name,
                                           peer.target, peer.address, state)

    def set_target_health(self, target: str, healthy: bool) -> int:
        """Mark every address of `target` ("host:port" as configured); how many matched."""
        peers = [p for p in self.peers if p.target == target]
        for p in peers:
            p.set_manual(healthy)
        return len(peers)

    def inherit(self, old: Balancer) -> None:
        """Carry the health and load of addresses that the new definition still has."""
        # the old answers stand for the hosts both definitions resolve: until they expire
        # the new balancer serves the addresses the old one did
        self.dns_answers = {h: a for h, a in old.dns_answers.items() if h in self.dns_expiry}
        self._build_peers({(p.ip, p.port): p for p in old.peers}, self.dns_answers)
        self.dns_expiry.update({h: e for h, e in old.dns_expiry.items()
                                if h in self.dns_answers})
        if old.algorithm == self.algorithm and len(old.wheel) == len(self.wheel):
            self.pointer = old.pointer % len(self.wheel) if self.wheel else 0

    # -- picking --------------------------------------------------------------------------
    def pick(self, ex: Exchange, tried: list[Peer] | None) -> Peer | None:
        if self.task is None and self.loop is None:
            self.start()
        if self.health.threshold and self.total_weight and (
                self.available_weight * 100 / self.total_weight < self.health.threshold):
            return None
        now = self.loop_time()
        algo = self.algorithm
        if algo == "round-robin":
            peer = self._pick_rr(now, tried)
        elif algo == "consistent-hashing":
            peer = self._pick_ring(ex, now, tried)
        else:
            peer = self._pick_scored(now, tried, algo == "latency")
        if peer is not None:
            peer.active += 1
            if not peer.healthy:
                peer.trial = now  # half-open
        return peer

    def _pick_rr(self, now: float, tried: list[Peer] | None) -> Peer | None:
        wheel = self.wheel
        n = len(wheel)
        i = self.pointer
        fallback = None
        for _ in range(n):
            p = wheel[i]
            i = i + 1 if i + 1 < n else 0
            if p.healthy or p.usable(now):
                if tried is not None and p in tried:
                    fallback = fallback or p
                    continue
                self.pointer = i
                return p
        return fallback

    def _pick_ring(self, ex: Exchange, now: float, tried: list[Peer] | None) -> Peer | None:
        ring = self.ring
        if not ring:
            return None
        key = self._hash_key(ex, self.hash_on)
        if key is None:
            key = self._hash_key(ex, self.hash_fallback)
        start = bisect_right(ring, _h32(key or ""))
        n = len(ring)
        peers = self.ring_peers
        fallback = None
        for k in range(n):
            p = peers[(start + k) % n]
            if p.healthy or p.usable(now):
                if tried is not None and p in tried:
                    fallback = fallback or p
                    continue
                return p
        return fallback

    def _pick_scored(self, now: float, tried: list[Peer] | None, latency: bool) -> Peer | None:
        cands = [p for p in self.peers if p.weight > 0 and (p.healthy or p.usable(now))
                 and (tried is None or p not in tried)]
        if not cands:
            cands = [p for p in self.peers if p.weight > 0 and (p.healthy or p.usable(now))]
            if not cands:
                return None
        if latency:
            if len(cands) == 1:
                return cands[0]
            a, b = random.sample(cands, 2)
            return a if self._ewma(a, now) / a.weight <= self._ewma(b, now) / b.weight else b
        n = len(cands)
        self.rotate = r = (self.rotate + 1) % n
        best, score = None, math.inf
        for k in range(n):
            p = cands[(r + k) % n]
            s = (p.active + 1) / p.weight
            if s < score:
                best, score = p, s
        return best

    @staticmethod
    def _ewma(p: Peer, now: float) -> float:
        if not p.ewma_t:
            return 0.0
        return p.ewma * math.exp(-(now - p.ewma_t) / EWMA_DECAY)

    def _hash_key(self, ex: Exchange, spec: tuple[str, str | None]) -> str | None:
        kind, arg = spec
        if kind == "none":
            return None
        if kind == "consumer":
            cred = ex.credential
            return ex.consumer_id or (cred.get("id") if cred else None)
        if kind == "ip":
            return ex.client_ip
        if kind == "header" and arg:
            values = ex.get_headers(arg)
            return "".join(values) if values else None
        if kind == "cookie" and arg:
            for raw in ex.get_headers("cookie"):
                for part in raw.split(";"):
                    name, _, value = part.strip().partition("=")
                    if name == arg:
                        return value
            # Kong: no cookie yet — make one and hand it to the client
            value = str(uuid.uuid4())
            ex.add_response_header("Set-Cookie", f"{arg}={value}; Path={self.cookie_path}; "
                                   "Same-Site=Lax; HttpOnly")
            return value
        if kind == "path":
            m = ex.match
            return m.normalized_path if m is not None else ex.path
        if kind == "query_arg" and arg:
            args = ex.query().get(arg)
            return ",".join(args) if args else None
        if kind == "uri_capture" and arg:
            caps = ex.match.captures if ex.match is not None else None
            if not caps:
                return None
            v = caps.get(arg)
            if v is None and arg.isdigit():
                v = caps.get(int(arg))
            return v
        return None

    def why_none(self) -> str:
        if not self.targets:
            return "upstream has no targets"
        if not self.peers:
            return "no target address could be resolved"
        if not self.total_weight or not any(p.weight for p in self.peers):
            return "every target has weight 0"
        if self.health.threshold and self.total_weight and (
                self.available_weight * 100 / self.total_weight < self.health.threshold):
            return (f"available weight {self.available_weight}/{self.total_weight} is below "
                    f"the health threshold {self.health.threshold:g}%")
        return "every target is unhealthy"

    # -- background: active probes and DNS --------------------------------------------------
    def start(self) -> None:
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet (offline build): started by the first pick
        hc = self.health
        if hc.healthy_interval or hc.unhealthy_interval or self.dns_expiry:
            self.task = self.loop.create_task(self._run())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    async def _run(self) -> None:
        hc = self.health
        next_healthy = next_unhealthy = 0.0
        while True:
            now = self.loop_time()
            await self._refresh_dns(now)
            batch: list[Peer] = []
            if hc.healthy_interval and now >= next_healthy:
                batch += [p for p in self.peers if p.healthy]
                next_healthy = now + hc.healthy_interval
            if hc.unhealthy_interval and now >= next_unhealthy:
                batch += [p for p in self.peers if not p.healthy]
                next_unhealthy = now + hc.unhealthy_interval
            if batch:
                await self._probe_all(batch)
            due = [t for t in (next_healthy if hc.healthy_interval else 0,
                               next_unhealthy if hc.unhealthy_interval else 0,
                               min(self.dns_expiry.values(), default=0)) if t]
            now = self.loop_time()
            await asyncio.sleep(min(max(min(due, default=now + 1) - now, 0.05), 1.0))

    async def _probe_all(self, batch: list[Peer]) -> None:
        hc = self.health
        sem = asyncio.Semaphore(hc.concurrency)
        host = self.upstream.get("host_header") or self.name

        async def one(p: Peer) -> None:
            async with sem:
                result = await health.probe(p, hc, host)
            classify(p, hc.active, result, self.loop_time())

        await asyncio.gather(*(one(p) for p in batch), return_exceptions=True)

    async def _refresh_dns(self, now: float) -> None:
        due = [h for h, exp in self.dns_expiry.items() if exp <= now]
        if not due or self.resolver is None:
            return
        changed = False
        for host in due:
            try:
                addresses, ttl = await self.resolver.resolve_all(host)
                addresses.sort()
                if self.dns_answers.get(host) != addresses:
                    self.dns_answers[host] = addresses
                    changed = True
                self.dns_expiry[host] = self.loop_time() + max(ttl, 1.0)
                self.dns_errors.difference_update(
                    t for t, h, _, _ in self.targets if h == host)
            except OSError as exc:
                self.dns_expiry[host] = self.loop_time() + DNS_RETRY
                bad = {t for t, h, _, _ in self.targets if h == host}
                if not bad <= self.dns_errors:
                    log.error("upstream %s: cannot resolve %s: %s", self.name, host, exc)
                self.dns_errors |= bad
        if changed:
            self._build_peers({}, self.dns_answers)

    # -- reporting ------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """This worker's view, for the Admin API (Kong's /upstreams/{u}/health shape)."""
        return {"name": self.name, "enabled": self.health.enabled,
                "targets": [{"target": t, "weight": w, "dns_error": t in self.dns_errors,
                             "addresses": [{"ip": p.ip, "port": p.port, "weight": p.weight,
                                            "healthy": p.healthy}
                                           for p in self.peers if p.target == t]}
                            for t, _, _, w in self.targets]}


def definition_key(upstream: dict[str, Any], targets: list[dict[str, Any]]) -> str:
    """Name + a hash of everything that shapes the balancer (not ids or timestamps)."""
    body = {k: v for k, v in upstream.items() if k not in ("id", "created_at", "updated_at",
                                                             "tags")}
    tlist = sorted((t["target"], t.get("weight", 100)) for t in targets)
    digest = hashlib.blake2b(json.dumps([body, tlist], sort_keys=True, default=str).encode(),
                             digest_size=8).hexdigest()
    return f"{upstream['name']}#{digest}"


class BalancerRegistry:
    """The worker's balancers, kept across snapshots (in `ServerState.plugin_state`)."""

    def __init__(self) -> None:
        self.live: dict[str, Balancer] = {}

    def build(self, entities: dict[str, list[dict[str, Any]]], resolver: Resolver | None,
              worker: dict[str, Any]) -> dict[str, Balancer]:
        """Balancers for a new config, by upstream name; nothing is started or stopped
        until `commit` (the snapshot may still fail to compile)."""
        by_up: dict[str, list[dict[str, Any]]] = {}
        for t in entities.get("targets") or ():
            by_up.setdefault(t["upstream"]["id"], []).append(t)
        by_name = {b.name: b for b in self.live.values()}
        out: dict[str, Balancer] = {}
        for up in entities.get("upstreams") or ():
            targets = by_up.get(up["id"], [])
            key = definition_key(up, targets)
            bal = self.live.get(key)
            if bal is None:
                bal = Balancer(up, targets, key, resolver, worker)
                old = by_name.get(up["name"])
                if old is not None:
                    bal.inherit(old)
            out[up["name"]] = bal
        return out

    def commit(self, balancers: dict[str, Balancer]) -> None:
        keep = {b.key for b in balancers.values()}
        reg = None
        for key, bal in list(self.live.items()):
            if key not in keep:
                bal.stop()
                del self.live[key]
                # series of addresses gone with the old definition
                reg = reg or metrics.for_worker(bal.worker)
                gone = {(p.target, p.address) for p in bal.peers}
                new = balancers.get(bal.name)
                if new is not None:
                    gone -= {(p.target, p.address) for p in new.peers}
                gauge = metrics.upstream_health_gauge(reg)
                for target, address in gone:
                    for s in metrics.TARGET_HEALTH_STATES:
                        gauge.remove((bal.name, target, address, s))
        for bal in balancers.values():
            if bal.key not in self.live:
                self.live[bal.key] = bal
                bal.start()


def registry_for(worker: dict[str, Any]) -> BalancerRegistry:
    reg = worker.get(REGISTRY_KEY)
    if reg is None:
        reg = worker[REGISTRY_KEY] = BalancerRegistry()
    assert isinstance(reg, BalancerRegistry)
    return reg
