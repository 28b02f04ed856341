"""Per-route plugin chains, resolved once per config snapshot (Kong's plugins_iterator).

Which configuration of a plugin applies to a request (§3.0 of the Kong reference) — the most
specific existing one, in this order:

    1 route+service+consumer   2 route+consumer   3 service+consumer   4 route+service
    5 consumer                 6 route            7 service            8 global

Route and service are known when the chain is built, so for every route this module
precomputes, per plugin name, the instance that applies without a consumer (`default`) and
the instance for each consumer that has a consumer-scoped config of that plugin
(`by_consumer`). At request time the lookup is one dict get with the consumer identified so
far. Entries are ordered by priority (highest first), then by name descending, in every phase.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import methodcaller
from typing import TYPE_CHECKING, Any

from tollway.plugins import registry
from tollway.plugins.base import BODY_BUFFER_LIMIT, BuildContext
from tollway.plugins.runners import Runner, access_runner, log_runner, response_runner

if TYPE_CHECKING:
    from tollway.config.model import Config
    from tollway.plugins.base import Plugin

HTTP_PROTOCOLS = frozenset({"http", "https", "grpc", "grpcs"})
Key = tuple[str, str | None, str | None, str | None]  # name, route, service, consumer


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    priority: int
    default: Plugin | None
    by_consumer: dict[str, Plugin] | None  # None when no consumer-scoped config exists

    def resolve(self, consumer_id: str | None) -> Plugin | None:
        if self.by_consumer is None or consumer_id is None:
            return self.default
        return self.by_consumer.get(consumer_id, self.default)


@dataclass(frozen=True, slots=True)
class Chain:
    access: tuple[Entry, ...] = ()
    response: tuple[Entry, ...] = ()
    body: tuple[Entry, ...] = ()
    log: tuple[Entry, ...] = ()
    names: frozenset[str] = field(default_factory=frozenset)
    # Some access-phase instance needs the request body: read it all before the access
    # phase, up to `body_limit` bytes (precomputed, so other routes pay nothing).
    buffers_body: bool = False
    body_limit: int = BODY_BUFFER_LIMIT
    # Every response-phase plugin only sets or adds headers (`response_headers`): the
    # response head is serialised in one pass, without a HeaderList.
    response_light: bool = False
    # When no plugin of the chain has a consumer-scoped config, which instance runs never
    # depends on the request: the phase methods, bound once (None otherwise).
    access_fns: tuple[Any, ...] | None = None
    response_fns: tuple[Any, ...] | None = None
    log_fns: tuple[Any, ...] | None = None
    # What the exchange calls for each phase (when the phase has entries): the bound methods
    # above as one generated function (plugins/runners.py), else the generic runner of
    # PluginAPI, which resolves consumer-scoped instances per request.
    access_run: Runner = methodcaller("run_access")
    response_run: Runner = methodcaller("run_response", None)
    log_run: Runner = methodcaller("run_log")

    @property
    def empty(self) -> bool:
        return not (self.access or self.response or self.body or self.log)


EMPTY = Chain()


def _fk(entity: dict[str, Any], name: str) -> str | None:
    ref = entity.get(name)
    return ref["id"] if isinstance(ref, dict) else None


def has_phase(cls: type, phase: str) -> bool:
    if phase == "response":
        return (callable(getattr(cls, "response", None))
                or callable(getattr(cls, "response_headers", None)))
    return callable(getattr(cls, phase, None))


def is_light_response(cls: type) -> bool:
    """The class's response phase is `response_headers(req)`: it only sets or adds headers
    and never reads the response's own."""
    return (callable(getattr(cls, "response_headers", None))
            and not callable(getattr(cls, "response", None)))


def is_async_access(cls: type) -> bool:
    return inspect.iscoroutinefunction(getattr(cls, "access", None))


class ChainBuilder:
    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        self.ctx = ctx if ctx is not None else BuildContext(config)
        self.by_key: dict[Key, dict[str, Any]] = {}
        self.consumers_by_name: dict[str, set[str]] = {}
        self.names: set[str] = set()
        self.instances: dict[str, Plugin] = {}
        self.runners: dict[tuple[Any, ...], Runner] = {}  # (see make_chain)
        for p in config.entities.get("plugins", []):
            if not p.get("enabled", True):
                continue
            if not HTTP_PROTOCOLS.intersection(p.get("protocols") or HTTP_PROTOCOLS):
                continue
            cls = registry.get(p["name"])
            if cls is None:
                raise ValueError(registry.not_enabled_message(p["name"]))
            key = (p["name"], _fk(p, "route"), _fk(p, "service"), _fk(p, "consumer"))
            self.by_key[key] = p
            self.names.add(p["name"])
            if key[3] is not None:
                self.consumers_by_name.setdefault(p["name"], set()).add(key[3])

    def _instance(self, entity: dict[str, Any] | None) -> Plugin | None:
        if entity is None:
            return None
        inst = self.instances.get(entity["id"])
        if inst is None:
            cls = registry.get(entity["name"])
            assert cls is not None
            inst = cls(entity["config"], entity, self.ctx)
            self.instances[entity["id"]] = inst
        return inst

    def _first(self, name: str, keys: list[tuple[str | None, str | None, str | None]]
               ) -> Plugin | None:
        for r, s, c in keys:
            entity = self.by_key.get((name, r, s, c))
            if entity is not None:
                return self._instance(entity)
        return None

    def chain(self, route_id: str | None, service_id: str | None) -> Chain:
        entries: list[Entry] = []
        r, s = route_id, service_id
        for name in self.names:
            default = self._first(name, [(r, s, None), (r, None, None), (None, s, None),
                                         (None, None, None)] if r is not None else
                                  [(None, None, None)])
            by_consumer: dict[str, Plugin] | None = None
            consumers = self.consumers_by_name.get(name)
            if consumers and r is not None:
                by_consumer = {}
                for c in consumers:
                    inst = self._first(name, [(r, s, c), (r, None, c), (None, s, c), (r, s, None),
                                              (None, None, c), (r, None, None), (None, s, None),
                                              (None, None, None)])
                    if inst is not None and inst is not default:
                        by_consumer[c] = inst
                by_consumer = by_consumer or None
            if default is None and by_consumer is None:
                continue
            cls = registry.get(name)
            entries.append(Entry(name, int(getattr(cls, "priority", 0)), default, by_consumer))
        # Kong: priority descending, then name descending.
        entries.sort(key=lambda e: e.name, reverse=True)
        entries.sort(key=lambda e: e.priority, reverse=True)
        return make_chain(entries, self.runners)


def make_chain(entries: list[Entry], cache: dict[tuple[Any, ...], Runner] | None = None
               ) -> Chain:
    """The chain of `entries` (ordered). `cache`: runners already made while building the
    same snapshot (keyed by the instances, which the builder keeps alive meanwhile)."""
    if not entries:
        return EMPTY

    def with_phase(phase: str) -> tuple[Entry, ...]:
        out = []
        for e in entries:
            insts = [e.default, *(e.by_consumer or {}).values()]
            if any(i is not None and has_phase(type(i), phase) for i in insts):
                out.append(e)
        return tuple(out)

    def bound(phase_entries: tuple[Entry, ...], method: str | None = None
              ) -> tuple[Any, ...] | None:
        if any(e.by_consumer is not None or e.default is None for e in phase_entries):
            return None
        fns = []
        for e in phase_entries:
            inst = e.default
            name = method or ("response_headers" if is_light_response(type(inst))
                              else "response")
            fns.append(getattr(inst, name))
        return tuple(fns)

    access = with_phase("access")
    response = with_phase("response")
    log = with_phase("log")
    limits = [inst.request_body_limit or BODY_BUFFER_LIMIT
              for e in access for inst in (e.default, *(e.by_consumer or {}).values())
              if inst is not None and has_phase(type(inst), "access") and inst.wants_body()]
    light = all(is_light_response(type(i)) for e in response
                for i in (e.default, *(e.by_consumer or {}).values()) if i is not None)
    access_fns, response_fns, log_fns = bound(access, "access"), bound(response), bound(log, "log")
    runners: dict[str, Runner] = {}
    cache = {} if cache is None else cache

    def runner(kind: str, make: Callable[..., Runner], fns: tuple[Any, ...],
               phase_entries: tuple[Entry, ...]) -> None:
        # Routes that share their plugin instances (a service's, the global ones) share
        # the runner too: one per distinct chain in a config, not one per route.
        key = (kind, *(id(e.default) for e in phase_entries))
        made = cache.get(key)
        if made is None:
            made = cache[key] = make(fns, [e.name for e in phase_entries])
        runners[kind] = made

    # (a phase without entries is never called: no runner for it)
    if access_fns:
        runner("access_run", access_runner, access_fns, access)
    if response_fns and light:
        runner("response_run", response_runner, response_fns, response)
    if log_fns:
        runner("log_run", log_runner, log_fns, log)
    return Chain(access=access, response=response,
                 body=with_phase("body"), log=log,
                 names=frozenset(e.name for e in entries),
                 buffers_body=bool(limits), body_limit=max(limits, default=BODY_BUFFER_LIMIT),
                 response_light=bool(response) and light,
                 access_fns=access_fns, response_fns=response_fns, log_fns=log_fns,
                 **runners)


def build_chains(config: Config, ctx: BuildContext | None = None
                 ) -> tuple[dict[str, Chain], Chain]:
    """Chains for every route (by route id) and the global chain used when no route
    matched (global plugins only, as Kong runs for a 404)."""
    builder = ChainBuilder(config, ctx)
    if not builder.names:
        return {}, EMPTY
    chains = {r["id"]: builder.chain(r["id"], _fk(r, "service"))
              for r in config.entities.get("routes", [])}
    return chains, builder.chain(None, None)
