"""`tollway start`: run a node in the foreground."""

from __future__ import annotations

import sys

import click

from tollway import settings as settings_mod


@click.command("start")
@click.option("-c", "--config", "config_paths", type=click.Path(dir_okay=False),
              multiple=True,
              help="Declarative config (YAML/JSON) to serve; repeat to merge several files "
                   "(e.g. consumers kept apart). With database=sqlite it is stored as a new "
                   "revision; without it the latest stored revision is served.")
@click.option("--conf", "conf_path", type=click.Path(dir_okay=False),
              help="Settings file in kong.conf syntax (default: $TOLLWAY_CONF).")
@click.option("-p", "--prefix", help="Working and data directory (setting `prefix`).")
def command(config_paths: tuple[str, ...], conf_path: str | None, prefix: str | None) -> None:
    """Start the gateway in the foreground; SIGTERM drains and exits 0."""
    from tollway.node.run import start

    try:
        settings = settings_mod.load(conf_path, overrides={"prefix": prefix} if prefix else None)
    except settings_mod.SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(start(settings, list(config_paths)))
