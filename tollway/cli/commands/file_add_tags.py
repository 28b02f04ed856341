"""``tollway file add-tags TAG...``."""

from __future__ import annotations

import click

from tollway.cli.commands._reconcile_common import (
    dump_document,
    fail,
    output_options,
    read_document,
    write_output,
)
from tollway.reconcile.jsonpath import JSONPathError
from tollway.reconcile.patch import add_tags


@click.command("add-tags")
@click.argument("tags", nargs=-1, required=True)
@click.option("-s", "--state", default="-", show_default=True, help="File to edit.")
@click.option("--selector", "selectors", multiple=True, metavar="JSONPATH",
              help="Only the selected entities (default: every entity).")
@output_options
def command(tags: tuple[str, ...], state: str, selectors: tuple[str, ...], output: str,
            fmt: str) -> None:
    """Add TAG(s) to every entity of the file (or the selected ones)."""
    doc = read_document(state)
    try:
        add_tags(doc, list(tags), list(selectors))
    except JSONPathError as exc:
        fail(str(exc))
    write_output(dump_document(doc, fmt), output)
