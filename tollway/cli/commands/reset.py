"""``tollway config reset``: delete every entity (within the select tags), as one revision."""

from __future__ import annotations

import click

from tollway.cli.commands._reconcile_common import admin_options, colour_enabled, fail
from tollway.config.model import Config
from tollway.reconcile.client import AdminClient
from tollway.reconcile.diff import plan
from tollway.reconcile.output import Masker, render_text
from tollway.reconcile.sync import Outcome, apply_plan


@click.command("reset")
@click.option("--select-tag", "select_tags", multiple=True, metavar="TAG",
              help="Delete only entities carrying every TAG.")
@click.option("--message", "-m", default=None, help="Message stored with the revision.")
@click.option("--force", "-f", is_flag=True, help="Do not ask for confirmation.")
@click.option("--no-color", is_flag=True)
@admin_options
def command(select_tags: tuple[str, ...], message: str | None, force: bool, no_color: bool,
            client: AdminClient) -> None:
    """Delete all entities on the node (or those carrying --select-tag) as one revision."""
    running = client.running()
    p = plan(running.config, Config.empty(), select_tags=list(select_tags))
    if p.changed and not force and not click.confirm(
            f"This deletes {len(p.events)} entities on {client.url}. Continue?"):
        fail("aborted; nothing was changed")
    outcome = apply_plan(client, Outcome(p, running), message=message or "tollway config reset")
    render_text(p, Masker(), colour_enabled(no_color), click.echo)
    click.echo(f"Applied as revision {outcome.revision}." if outcome.applied
               else "Nothing to delete.")
