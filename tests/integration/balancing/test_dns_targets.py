"""Hostname targets resolved over DNS (a real UDP DNS server): A records with their TTL, SRV
records with their own ports and weights, `dns_order` and `dns_resolver` (Kong's settings)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from balancing_support import Target, count, document
from dataplane_helpers import Gateway, LoopThread
from dns_support import DNSServer

from tollway import settings as settings_mod
from tollway.dataplane.resolver import DEFAULT_ORDER, NotFound, Resolver


@pytest.fixture
def dns() -> Iterator[DNSServer]:
    server = DNSServer()
    yield server
    server.close()


def resolve(dns: DNSServer, host: str, order: tuple[str, ...] = DEFAULT_ORDER,
            resolver: Resolver | None = None) -> Any:
    r = resolver or Resolver("", nameservers=[("127.0.0.1", dns.port)], order=order)
    return asyncio.run(r.resolve_all(host))


def test_a_records_with_their_ttl(dns: DNSServer) -> None:
    dns.ttl = 7
    dns.zone[("svc.test", "A")] = ["127.0.0.2", "127.0.0.1"]
    addresses, ttl = resolve(dns, "svc.test")
    assert addresses == [("127.0.0.2", None, None), ("127.0.0.1", None, None)] and ttl == 7
    # Kong's default order asks SRV first; the name has none (NODATA), so A next
    assert dns.asked == [("svc.test", "SRV"), ("svc.test", "A")]


def test_srv_records_give_ports_and_weights_lowest_priority_only(dns: DNSServer) -> None:
    dns.zone[("api.test", "SRV")] = [(10, 3, 8001, "a.test"), (10, 0, 8002, "b.test"),
                                     (20, 5, 8003, "c.test")]
    for name, ip in (("a.test", "127.0.0.11"), ("b.test", "127.0.0.12"),
                     ("c.test", "127.0.0.13")):
        dns.zone[(name, "A")] = [ip]
    addresses, ttl = resolve(dns, "api.test")
    # priority 20 is a fallback group: not used while priority 10 has records; weight 0 → 1
    assert addresses == [("127.0.0.11", 8001, 3), ("127.0.0.12", 8002, 1)]
    assert ttl == 60
    assert dns.asked == [("api.test", "SRV")]  # the targets' addresses came as glue
    dns.asked.clear()
    dns.srv_glue = False
    addresses, _ = resolve(dns, "api.test")
    assert addresses == [("127.0.0.11", 8001, 3), ("127.0.0.12", 8002, 1)]
    assert dns.asked == [("api.test", "SRV"), ("a.test", "A"), ("b.test", "A")]


def test_dns_order_and_last(dns: DNSServer) -> None:
    dns.zone[("api.test", "SRV")] = [(1, 1, 9000, "a.test")]
    dns.zone[("a.test", "A")] = ["127.0.0.5"]
    dns.zone[("plain.test", "A")] = ["127.0.0.6"]
    with pytest.raises(OSError, match="no A record"):
        resolve(dns, "api.test", order=("A",))
    assert dns.asked == [("api.test", "A")]
    dns.asked.clear()
    r = Resolver("", nameservers=[("127.0.0.1", dns.port)])
    assert resolve(dns, "plain.test", resolver=r)[0] == [("127.0.0.6", None, None)]
    assert resolve(dns, "plain.test", resolver=r)[0] == [("127.0.0.6", None, None)]
    # LAST: the second lookup asks the type that answered the first straight away
    assert dns.asked == [("plain.test", "SRV"), ("plain.test", "A"), ("plain.test", "A")]
    dns.asked.clear()
    with pytest.raises(OSError, match="NXDOMAIN"):
        resolve(dns, "gone.test")
    assert dns.asked == [("gone.test", "SRV")]  # a name error ends the lookup


def test_aaaa_when_dns_order_names_it(dns: DNSServer) -> None:
    dns.zone[("v6.test", "AAAA")] = ["::1"]
    assert resolve(dns, "v6.test", order=("AAAA", "A"))[0] == [("::1", None, None)]
    with pytest.raises(OSError, match="no SRV/A record"):
        resolve(dns, "v6.test")  # the default order does not ask AAAA, as Kong's


def test_dns_settings_are_checked() -> None:
    def load(**values: str) -> settings_mod.Settings:
        return settings_mod.load(env={}, overrides=values)

    s = load(dns_resolver="[::1]:5353, 10.0.0.1", dns_order="last,a")
    assert s.dns_resolver == (("::1", 5353), ("10.0.0.1", 53))
    assert s.dns_order == ("LAST", "A")
    assert load().dns_order == DEFAULT_ORDER and load().dns_resolver == ()
    for values, message in (
            ({"dns_resolver": "dns.example"},
             "dns_resolver: 'dns.example' is not an IP address[:port]"),
            ({"dns_resolver": "10.0.0.1:99999"}, "dns_resolver: invalid port in '10.0.0.1:99999'"),
            ({"dns_order": "A,MX"}, "dns_order: invalid record type 'MX'"),
            ({"dns_order": "LAST,CNAME"}, "dns_order: names none of SRV, A, AAAA")):
        with pytest.raises(settings_mod.SettingsError, match=message.replace("[", r"\[")):
            load(**values)


def test_srv_target_balances_over_its_records(target_loop: LoopThread, gateways: list[Any],
                                              dns: DNSServer) -> None:
    a, b = Target(target_loop, "a"), Target(target_loop, "b")
    dns.ttl = 1
    dns.zone[("api.test", "SRV")] = [(10, 3, a.port, "node-a.test"),
                                     (10, 1, b.port, "node-b.test")]
    dns.zone[("node-a.test", "A")] = ["127.0.0.1"]
    dns.zone[("node-b.test", "A")] = ["127.0.0.1"]
    # the target's own port (80) and weight are replaced by each record's
    up = {"name": "srv.up", "targets": [{"target": "api.test:80", "weight": 100}]}
    g = Gateway(document(up), {"dns_resolver": dns.address})
    gateways.append(g)
    deadline = time.monotonic() + 5
    # the balancer asks DNS once it runs: until the answer, no address (503)
    while time.monotonic() < deadline and not set(count(g.port, 4)) <= {"a", "b"}:
        time.sleep(0.05)
    got = count(g.port, 4000)
    assert abs(got.get("a", 0) / 4000 - 0.75) <= 0.05 * 0.75, got
    assert abs(got.get("b", 0) / 4000 - 0.25) <= 0.05 * 0.25, got
    # the record set changes: once the TTL runs out, traffic follows it
    dns.zone[("api.test", "SRV")] = [(10, 1, b.port, "node-b.test")]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and set(count(g.port, 20)) != {"b"}:
        time.sleep(0.2)
    assert count(g.port, 200) == {"b": 200}


def test_a_changed_upstream_keeps_serving_resolved_addresses(
        target_loop: LoopThread, gateways: list[Any], dns: DNSServer) -> None:
    a = Target(target_loop, "a")
    dns.zone[("app.test", "A")] = ["127.0.0.1"]
    up = {"name": "a.up", "targets": [{"target": f"app.test:{a.port}"}]}
    g = Gateway(document(up), {"dns_resolver": dns.address})
    gateways.append(g)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and count(g.port, 2) != {"a": 2}:
        time.sleep(0.05)
    # a new definition (another algorithm) is a new balancer: it inherits the answer
    # instead of having no address until the name is resolved again (60 s here)
    g.swap(document({**up, "algorithm": "least-connections"}))
    assert count(g.port, 50) == {"a": 50}


def test_service_host_takes_its_addresses_in_turn_and_srv_ports(dns: DNSServer) -> None:
    dns.zone[("multi.test", "A")] = ["127.0.0.1", "127.0.0.2"]
    dns.zone[("srv.test", "SRV")] = [(1, 2, 9001, "x.test"), (1, 1, 9002, "y.test")]
    dns.zone[("x.test", "A")] = ["127.0.0.3"]
    dns.zone[("y.test", "A")] = ["127.0.0.4"]
    r = Resolver("", nameservers=[("127.0.0.1", dns.port)])

    async def picks(host: str, n: int) -> list[tuple[str, int]]:
        return [(o[0], o[1]) for o in [await r.resolve(host, 80, None) for _ in range(n)]]

    # a name with two A records: both, in turn (Kong's resolver; the first one only before)
    assert asyncio.run(picks("multi.test", 4)) == [("127.0.0.1", 80), ("127.0.0.2", 80)] * 2
    # SRV: the record's port replaces the service's, weight 2:1
    assert sorted(asyncio.run(picks("srv.test", 3))) == [
        ("127.0.0.3", 9001), ("127.0.0.3", 9001), ("127.0.0.4", 9002)]
    # answers are kept for their TTL: no new question within it
    asked = len(dns.asked)
    asyncio.run(picks("multi.test", 2))
    assert len(dns.asked) == asked


def test_names_dns_does_not_know_go_to_the_system_resolver(dns: DNSServer) -> None:
    # "localhost" is no record of the test zone (NXDOMAIN): nsswitch (the hosts file) knows it
    addresses, ttl = resolve(dns, "localhost")
    assert ("127.0.0.1", None, None) in addresses and ttl == 30.0
    # no nameserver answering at all: the same, without waiting on each record type
    silent = Resolver("", nameservers=[("127.0.0.1", 9)])  # discard: nothing answers
    silent.dns_timeout = 0.2
    started = time.monotonic()
    addresses, _ = asyncio.run(silent.resolve_all("localhost"))
    assert ("127.0.0.1", None, None) in addresses
    assert time.monotonic() - started < 1.0


def test_failures_are_kept_for_dns_not_found_ttl_and_dns_error_ttl(dns: DNSServer) -> None:
    r = Resolver("", nameservers=[("127.0.0.1", dns.port)], not_found_ttl=30.0,
                 error_ttl=1.0)

    async def twice(host: str) -> list[str]:
        errors = []
        for _ in range(2):
            try:
                await r.resolve(host, 80, None)
            except OSError as exc:
                errors.append(type(exc).__name__)
        return errors

    # a name that does not exist: asked once, the second request fails from the cache
    assert asyncio.run(twice("nowhere.test")) == ["NotFound", "NotFound"]
    assert dns.asked.count(("nowhere.test", "SRV")) == 1
    # once it exists, the cached failure still holds until dns_not_found_ttl runs out
    dns.zone[("nowhere.test", "A")] = ["127.0.0.9"]
    assert asyncio.run(twice("nowhere.test")) == ["NotFound", "NotFound"]
    r.failures["nowhere.test"] = (0.0, r.failures["nowhere.test"][1])  # as if 30 s passed
    assert asyncio.run(r.resolve("nowhere.test", 80, None))[0] == "127.0.0.9"
    # no nameserver answering is an error, kept for dns_error_ttl only (1 s)
    silent = Resolver("", nameservers=[("127.0.0.1", 9)], error_ttl=0.3)
    silent.dns_timeout = 0.2

    async def fails_then_retries() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        with pytest.raises(OSError):
            await silent.resolve("nothing.invalid", 80, None)
        cached = silent.failures["nothing.invalid"][0] - loop.time()
        return 0 < cached <= 0.3, not isinstance(silent.failures["nothing.invalid"][1],
                                                 NotFound)

    assert asyncio.run(fails_then_retries()) == (True, True)


def test_dns_valid_ttl_replaces_record_ttls(dns: DNSServer) -> None:
    dns.ttl = 5
    dns.zone[("svc.test", "A")] = ["127.0.0.1"]
    r = Resolver("", nameservers=[("127.0.0.1", dns.port)], valid_ttl=120.0)
    assert asyncio.run(r.resolve_all("svc.test")) == ([("127.0.0.1", None, None)], 120.0)
    s = settings_mod.load(env={}, overrides={"dns_valid_ttl": "120", "dns_error_ttl": "0.5"})
    assert (s.dns_valid_ttl, s.dns_not_found_ttl, s.dns_error_ttl) == (120.0, 30.0, 0.5)
    with pytest.raises(settings_mod.SettingsError,
                       match="dns_not_found_ttl: expected a number of seconds, got 'x'"):
        settings_mod.load(env={}, overrides={"dns_not_found_ttl": "x"})


def test_expired_answers_serve_while_refreshed_and_while_dns_is_down(dns: DNSServer) -> None:
    dns.ttl = 1
    dns.zone[("svc.test", "A")] = ["127.0.0.1"]
    r = Resolver("", nameservers=[("127.0.0.1", dns.port)], stale_ttl=3600.0)

    async def scenario() -> list[str]:
        seen = [(await r.resolve("svc.test", 80, None))[0]]
        dns.zone[("svc.test", "A")] = ["127.0.0.2"]
        await asyncio.sleep(1.1)  # the answer expired
        # no wait for DNS: the stale address, and a lookup in the background
        seen.append((await r.resolve("svc.test", 80, None))[0])
        refresh = r.refreshing.get("svc.test")
        assert refresh is not None
        await refresh
        seen.append((await r.resolve("svc.test", 80, None))[0])
        # DNS goes away: once expired, the last answer keeps serving
        dns.close()
        r.dns_timeout = 0.2
        await asyncio.sleep(1.1)
        seen.append((await r.resolve("svc.test", 80, None))[0])
        pending = r.refreshing.get("svc.test")
        if pending is not None:
            await pending
        seen.append((await r.resolve("svc.test", 80, None))[0])
        return seen

    assert asyncio.run(scenario()) == ["127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2",
                                       "127.0.0.2"]


def test_close_cancels_the_background_lookups(dns: DNSServer) -> None:
    """A worker that stops while a stale answer is being looked up again leaves no task
    pending (asyncio would log "Task was destroyed but it is pending")."""
    dns.ttl = 1
    dns.zone[("svc.test", "A")] = ["127.0.0.1"]
    r = Resolver("", nameservers=[("127.0.0.1", dns.port)], stale_ttl=3600.0)

    async def scenario() -> tuple[bool, bool, dict[str, object]]:
        await r.resolve("svc.test", 80, None)
        dns.close()  # the lookup below waits for its timeout
        r.dns_timeout = 30.0
        await asyncio.sleep(1.1)
        await r.resolve("svc.test", 80, None)  # expired: served stale, refreshed behind
        task = r.refreshing["svc.test"]
        running = not task.done()
        await asyncio.wait_for(r.close(), 5)
        return running, task.cancelled(), dict(r.refreshing)

    assert asyncio.run(scenario()) == (True, True, {})
