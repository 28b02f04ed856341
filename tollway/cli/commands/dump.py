"""``tollway config dump``: the running config as a decK-style state file (the backup)."""

from __future__ import annotations

import click

from tollway.cli.commands._reconcile_common import admin_options, dump_document, write_output
from tollway.reconcile.client import AdminClient
from tollway.reconcile.dump import dump


@click.command("dump")
@click.option("-o", "--output-file", "output", default="-", show_default=True,
              help="Where to write ('-' is stdout).")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True)
@click.option("--select-tag", "select_tags", multiple=True, metavar="TAG",
              help="Only entities carrying every TAG; written to _info.select_tags.")
@click.option("--with-id", is_flag=True, help="Keep the ids of named entities.")
@click.option("--skip-defaults", is_flag=True, help="Leave out values equal to defaults.")
@admin_options
def command(output: str, fmt: str, select_tags: tuple[str, ...], with_id: bool,
            skip_defaults: bool, client: AdminClient) -> None:
    """Export the node's running configuration (routes nested under services, plugins
    under what they apply to, sorted by name).

    Secrets stay as stored: vault references are written as references.
    """
    running = client.running()
    doc = dump(running.config, select_tags=list(select_tags), with_id=with_id,
               skip_defaults=skip_defaults)
    write_output(dump_document(doc, fmt), output)
    if output not in ("-", ""):
        click.echo(f"Wrote revision {running.revision} ({running.hash}) to {output}", err=True)
