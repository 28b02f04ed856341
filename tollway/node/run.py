"""`tollway start`: load settings and the initial config, start the supervisor, the workers
and the admin listener, and run until SIGTERM/SIGINT (then drain and exit 0)."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import replace

import uvicorn
import uvloop

from tollway.config.errors import ConfigError
from tollway.config.loader import load_files
from tollway.config.model import Config
from tollway.controlplane.admin import create_admin_app, create_status_app
from tollway.controlplane.admin.auth import TokenError, insecure_bind, load_tokens
from tollway.controlplane.store import NotMigrated, Store, StoreError, open_store
from tollway.dataplane.server import bind_listener
from tollway.dataplane.tls import TLSError, server_options
from tollway.node.logs import setup_admin_access_log, setup_error_log
from tollway.node.supervisor import ApplyError, Supervisor
from tollway.plugins import registry
from tollway.settings import Settings

log = logging.getLogger("tollway.node")


class StartError(Exception):
    """The node cannot start; the message says why (printed, exit 1)."""


def initial_config(settings: Settings, paths: list[str]
                   ) -> tuple[Config, Store | None, int | None]:
    """The config to start with, the open store (None when DB-less) and the revision served:
    `--config` files (stored as a new revision, unless equal to the latest), else the
    store's latest revision, else the empty config."""
    if not paths and settings.declarative_config:
        paths = [p.strip() for p in settings.declarative_config.split(",") if p.strip()]
    if settings.database == "off":
        return (load_files(paths) if paths else Config.empty()), None, None
    config = load_files(paths) if paths else None  # invalid files fail before the database
    try:
        store = open_store(settings)
    except NotMigrated as exc:
        raise StartError(str(exc)) from exc
    except StoreError as exc:
        raise StartError(f"cannot use the database ({settings.database}): {exc}") from exc
    try:
        if config is not None:
            rev, _ = store.append(config, "tollway start", f"loaded from {', '.join(paths)}")
            return config, store, rev.number
        latest = store.latest()
    except StoreError as exc:
        store.close()
        raise StartError(str(exc)) from exc
    if latest is None:
        return Config.empty(), store, None
    return latest.config, store, latest.number


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
    config, store, revision = initial_config(settings, config_paths)
    settings.prefix.mkdir(parents=True, exist_ok=True)
    node = Supervisor(settings, config, store, revision)
    try:
        node.check(config)
    except Exception as exc:
        raise StartError(f"config does not compile: {exc}") from exc
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
    await stop.wait()
    log.info("tollway stopping: draining workers")
    for server, _, task in admin_servers:
        server.should_exit = True
        await task
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
