"""``tollway config rollback --to N``: make revision N current again (as a new revision)."""

from __future__ import annotations

import click

from tollway.cli.commands._reconcile_common import admin_options
from tollway.reconcile.client import AdminClient


@click.command("rollback")
@click.option("--to", "to", type=int, required=True, metavar="N",
              help="The revision to restore.")
@click.option("--message", "-m", default=None, help="Message stored with the new revision.")
@admin_options
def command(to: int, message: str | None, client: AdminClient) -> None:
    """Restore revision N: the node serves its config again, recorded as a new revision."""
    before = client.running()
    client.rollback(to, message or f"rollback to revision {to}")
    after = client.running()
    click.echo(f"Rolled back to revision {to}: now at revision {after.revision} "
               f"(was {before.revision}), config {after.hash}")
