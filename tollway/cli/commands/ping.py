"""``tollway config ping``: check the admin API answers (decK's ``gateway ping``)."""

from __future__ import annotations

import click

from tollway.cli.commands._reconcile_common import admin_options
from tollway.reconcile.client import AdminClient


@click.command("ping")
@admin_options
def command(client: AdminClient) -> None:
    """Check connectivity with the node's admin API; print its version."""
    info = client.ping()
    click.echo(f"Successfully connected to {client.url} "
               f"(tollway {info.get('version', '?')}, node {info.get('node_id', '?')})")
