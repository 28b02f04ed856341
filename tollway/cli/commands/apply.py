"""``tollway config apply FILE...``: sync without deletes (decK's ``gateway apply``)."""

from __future__ import annotations

import click

from tollway.cli.commands import sync
from tollway.reconcile.client import AdminClient
from tollway.reconcile.templates import Environment


@click.command("apply")
@sync.options
def command(files: tuple[str, ...], select_tags: tuple[str, ...], message: str | None,
            json_output: bool, no_color: bool, no_mask_values: bool, env: Environment,
            client: AdminClient) -> None:
    """Create and update the entities of FILE(s) on the node; never delete.

    Applied as one revision, like sync.
    """
    sync.run(files, select_tags, message, json_output, no_color, no_mask_values, env,
             client, delete=False)
