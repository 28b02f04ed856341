"""``tollway file remove-tags [TAG...]``."""

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
from tollway.reconcile.patch import remove_tags


@click.command("remove-tags")
@click.argument("tags", nargs=-1)
@click.option("-s", "--state", default="-", show_default=True, help="File to edit.")
@click.option("--selector", "selectors", multiple=True, metavar="JSONPATH",
              help="Only the selected entities (default: every entity).")
@click.option("--keep-empty-array", is_flag=True, help="Keep 'tags: []' when emptied.")
@output_options
def command(tags: tuple[str, ...], state: str, selectors: tuple[str, ...],
            keep_empty_array: bool, output: str, fmt: str) -> None:
    """Remove TAG(s) from the entities of the file (every tag when none is given)."""
    doc = read_document(state)
    try:
        remove_tags(doc, list(tags), list(selectors), keep_empty_array)
    except JSONPathError as exc:
        fail(str(exc))
    write_output(dump_document(doc, fmt), output)
