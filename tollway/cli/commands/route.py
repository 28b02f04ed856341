"""``tollway route test METHOD PATH``: which route, service, upstream URL and plugin chain a
request gets — computed offline from a file, or from a node's running config."""

from __future__ import annotations

from typing import Any

import click

from tollway.cli.commands._reconcile_common import env_options, fail, load_or_fail
from tollway.config.model import Config
from tollway.dataplane.router.router import build_router
from tollway.plugins import registry
from tollway.reconcile.client import AdminClient, AdminError
from tollway.reconcile.templates import Environment

# most specific first (Kong §3.0), without a consumer: the consumer is known only after auth
SCOPES = (("route", "service"), ("route",), ("service",), ())


def plugin_chain(config: Config, route: dict[str, Any], service: dict[str, Any] | None
                 ) -> list[tuple[str, int, dict[str, Any], str]]:
    """(name, priority, winning instance, scope) per plugin name, in execution order."""
    ids = {"route": route.get("id"), "service": (service or {}).get("id")}
    winners: dict[str, tuple[dict[str, Any], str]] = {}
    scope: tuple[str, ...]
    for scope in SCOPES:
        for plugin in config.entities.get("plugins") or ():
            if not plugin.get("enabled", True) or plugin["name"] in winners:
                continue
            if plugin.get("consumer") is not None:
                continue
            linked = {fk for fk in ("route", "service") if plugin.get(fk) is not None}
            if linked != set(scope):
                continue
            if all(plugin[fk]["id"] == ids[fk] for fk in scope):
                winners[plugin["name"]] = (plugin, "+".join(scope) or "global")
    out = []
    for name, (plugin, label) in winners.items():
        cls = registry.get(name)
        out.append((name, int(getattr(cls, "priority", 0) or 0), plugin, label))
    out.sort(key=lambda item: (-item[1], _desc(item[0])))
    return out


def _desc(name: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in name)


def upstream_url(service: dict[str, Any] | None, upstream_path: str, query: str) -> str:
    if service is None:
        return "(no service: 503)"
    port = service.get("port")
    default = {"http": 80, "https": 443}.get(service.get("protocol", "http"))
    netloc = service["host"] if port in (None, default) else f"{service['host']}:{port}"
    return f"{service.get('protocol', 'http')}://{netloc}{upstream_path}" + (
        f"?{query}" if query else "")


@click.group("route")
def command() -> None:
    """Routing helpers."""


@command.command("test")
@click.argument("method")
@click.argument("path")
@click.option("--config", "files", multiple=True, type=click.Path(dir_okay=False),
              help="Declarative file(s) to route with (default: the node's running config).")
@click.option("-H", "--header", "headers", multiple=True, metavar="K:V",
              help="Request header (Host: picks the host); repeatable.")
@click.option("--scheme", default="http", type=click.Choice(["http", "https"]))
@click.option("--admin-url", envvar="TOLLWAY_ADMIN_URL", default=None,
              help="Read the running config from this node instead of --config.")
@click.option("--admin-token", envvar="TOLLWAY_ADMIN_TOKEN", default=None)
@env_options
def test(method: str, path: str, files: tuple[str, ...], headers: tuple[str, ...],
         scheme: str, admin_url: str | None, admin_token: str | None,
         env: Environment) -> None:
    """Show the route METHOD PATH matches, its service, the final upstream URL and the
    ordered plugin chain with the instance that wins each plugin name (no consumer).

    Exit status 0 when a route matches, 1 when the request would get 404.
    """
    if files:
        config = load_or_fail(files, env).config
    else:
        try:
            with AdminClient(admin_url, admin_token) as client:
                config = client.running().config
        except AdminError as exc:
            fail(str(exc))
    hdrs: dict[str, list[str]] = {}
    for item in headers:
        k, sep, v = item.partition(":")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected 'name:value'", param_hint="-H")
        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    raw_path, _, query = path.partition("?")
    host = hdrs["host"][0] if hdrs.get("host") else None
    m = build_router(config).match(method.upper(), host, raw_path, hdrs, scheme)
    if m is None:
        click.echo(f"no route matches {method.upper()} {path} (404)")
        raise SystemExit(1)
    route, service = m.route, m.service
    click.echo(f"route:    {route.get('name') or route['id']}")
    click.echo(f"service:  {(service or {}).get('name') or (service or {}).get('id', '-')}")
    click.echo(f"upstream: {method.upper()} {upstream_url(service, m.upstream_path, query)}")
    chain = plugin_chain(config, route, service)
    click.echo("plugins:" if chain else "plugins:  (none)")
    for name, priority, plugin, scope in chain:
        click.echo(f"  {priority:>6}  {name:24} {scope:14} {plugin['id']}")
