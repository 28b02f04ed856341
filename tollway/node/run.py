"""`tollway start`: load settings and the initial config, start the supervisor, the workers
and the admin listener, and run until SIGTERM/SIGINT (then drain and exit 0)."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, replace

import uvicorn
import uvloop

from tollway.config.errors import ConfigError
from tollway.config.loader import load_files
from tollway.config.model import Config
from tollway.controlplane.admin import create_admin_app, create_status_app
from tollway.controlplane.admin.auth import TokenError, insecure_bind, load_tokens
from tollway.controlplane.store import NotMigrated, Store, StoreError, open_store
from tollway.controlplane.store.times import Times
from tollway.dataplane.server import bind_listener
from tollway.dataplane.tls import TLSError, server_options
from tollway.node import cache
from tollway.node.logs import setup_admin_access_log, setup_error_log
from tollway.node.supervisor import ApplyError, Supervisor
from tollway.node.sync import ClusterSync
from tollway.plugins import registry
from tollway.settings import Settings

log = logging.getLogger("tollway.node")


class StartError(Exception):
    """The node cannot start; the message says why (printed, exit 1)."""


@dataclass
class Initial:
    config: Config
    store: Store | None
    revision: int | None
    reachable: bool = True  # False: started on the on-disk cache, the database is down
    times: Times | None = None  # entity id -> (created_at, updated_at)


def initial_config(settings: Settings, paths: list[str]) -> Initial:
    """The config to start with, the open store (None when DB-less) and the revision served:
    `--config` files (stored as a new revision, unless equal to the latest), else the
    store's latest revision, else the empty config. The database unreachable: the config
    cached on disk by the last run (`tollway.node.cache`), if there is one."""
    if not paths and settings.declarative_config:
        paths = [p.strip() for p in settings.declarative_config.split(",") if p.strip()]
    if settings.database == "off":
        return Initial((load_files(paths) if paths else Config.empty()), None, None)
    config = load_files(paths) if paths else None  # invalid files fail before the database
    try:
        store = open_store(settings)
    except NotMigrated as exc:
        raise StartError(str(exc)) from exc
    except StoreError as exc:
        return _from_cache(settings, config, exc)
    try:
        if config is not None:
            rev, _ = store.append(config, "tollway start", f"loaded from {', '.join(paths)}")
            return Initial(config, store, rev.number, times=rev.times)
        latest = store.latest()
    except StoreError as exc:
        store.close()
        raise StartError(str(exc)) from exc
    if latest is None:
        return Initial(Config.empty(), store, None)
    return Initial(latest.config, store, latest.number, times=latest.times)


def _from_cache(settings: Settings, config: Config | None, exc: StoreError) -> Initial:
    reason = f"cannot use the database ({settings.database}): {exc}"
    if config is not None:
        # the files could not be stored: serving them would fork this node from the others
        raise StartError(f"{reason}; --config needs the database to store the new revision")
    cached = cache.load(settings.prefix)
    if cached is None:
        raise StartError(f"{reason}; no cached config in {cache.path(settings.prefix)}")
    log.error("%s; serving the cached config (revision %s, hash %s) until it is back",
              reason, cached[1], cached[0].hash)
    # the schema is checked once the database answers (ClusterSync)
    return Initial(cached[0], Store.open(settings), cached[1], reachable=False,
                   times=cached[2])


async def serve(settings: Settings, config_paths: list[str]) -> int:
    if any(listen.ssl for listen in settings.proxy_listen):
        try:  # check the TLS settings; generate the default certificate once, not per worker
            server_options(settings)
        except TLSError as exc:
            raise StartError(str(exc)) from exc
    refusal = insecure_bind(settings)
    if refusal is not None:
        raise StartError(refusal)
    try:
        load_tokens(settings)  # a bad token file stops the node before anything is bound
    except TokenError as exc:
        raise StartError(str(exc)) from exc
    try:
        registry.configure(settings.values["plugins"])
    except ValueError as exc:
        raise StartError(str(exc)) from exc
    init = initial_config(settings, config_paths)
    config = init.config
    settings.prefix.mkdir(parents=True, exist_ok=True)
    node = Supervisor(settings, config, init.store, init.revision, init.reachable, init.times)
    try:
        node.served = node.prepare(config)
    except ApplyError as exc:
        raise StartError(str(exc)) from exc
    if init.store is not None and init.reachable:
        await asyncio.to_thread(node._save_cache)
    sync = ClusterSync(node, schema_checked=init.reachable) if init.store is not None else None
    node.sync = sync
    # Admin and status listeners are bound without SO_REUSEPORT, before any worker starts: a
    # second node started on the same ports fails here instead of sharing the proxy port.
    listeners = [(bind_listener(replace(listen, reuseport=False)), create_admin_app)
                 for listen in settings.admin_listen]
    listeners += [(bind_listener(replace(listen, reuseport=False)), create_status_app)
                  for listen in settings.status_listen]
    await node.start_workers()
    loop = asyncio.get_running_loop()
    admin_servers = []
    for sock, make_app in listeners:
        ucfg = uvicorn.Config(make_app(node), lifespan="off", log_config=None,
                              access_log=settings.admin_access_log != "off",
                              loop="none", http="httptools")
        ucfg.load()
        server = uvicorn.Server(ucfg)
        server.lifespan = ucfg.lifespan_class(ucfg)
        await server.startup(sockets=[sock])
        admin_servers.append((server, sock, loop.create_task(server.main_loop())))
    log.info("tollway started: proxy %s, admin %s, status %s, %d worker(s), config %s",
             ", ".join(map(str, settings.proxy_listen)),
             ", ".join(map(str, settings.admin_listen)) or "off",
             ", ".join(map(str, settings.status_listen)) or "off",
             settings.workers, config.hash)
    stop = asyncio.Event()

    def on_signal() -> None:
        node.stopping = True  # before anything else: the watcher must not restart drainers
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, on_signal)
    loop.add_signal_handler(signal.SIGINT, on_signal)
    watcher = loop.create_task(node.watch())
    syncer = sync.start() if sync is not None else None
    await stop.wait()
    log.info("tollway stopping: draining workers")
    for server, _, task in admin_servers:
        server.should_exit = True
        await task
    if sync is not None and syncer is not None:
        sync.stop()
        syncer.cancel()
    await node.stop()
    watcher.cancel()
    for server, sock, _ in admin_servers:
        await server.shutdown(sockets=[sock])
    log.info("tollway stopped")
    return 0


def start(settings: Settings, config_paths: list[str]) -> int:
    setup_error_log(settings)
    setup_admin_access_log(settings)
    try:
        return uvloop.run(serve(settings, config_paths))
    except ConfigError as exc:
        for item in exc.errors:
            log.error("%s", item)
        log.error("tollway not started: the configuration is invalid (%d error(s))",
                  len(exc.errors))
        return 1
    except (StartError, ApplyError, OSError) as exc:
        log.error("tollway not started: %s", exc)
        return 1
