"""``tollway file list-tags``."""

from __future__ import annotations

import json

import click

from tollway.cli.commands._reconcile_common import fail, read_document, write_output
from tollway.reconcile.jsonpath import JSONPathError
from tollway.reconcile.patch import list_tags


@click.command("list-tags")
@click.option("-s", "--state", default="-", show_default=True, help="File to read.")
@click.option("--selector", "selectors", multiple=True, metavar="JSONPATH",
              help="Only the selected entities (default: every entity).")
@click.option("--format", "fmt", type=click.Choice(["plain", "yaml", "json"]),
              default="plain", show_default=True)
@click.option("-o", "--output-file", "output", default="-", show_default=True)
def command(state: str, selectors: tuple[str, ...], fmt: str, output: str) -> None:
    """List the tags used in the file, sorted, one per line."""
    doc = read_document(state)
    try:
        tags = list_tags(doc, list(selectors))
    except JSONPathError as exc:
        fail(str(exc))
    if fmt == "json":
        text = json.dumps({"tags": tags}, indent=2) + "\n"
    elif fmt == "yaml":
        text = "tags:\n" + "".join(f"  - {t}\n" for t in tags) if tags else "tags: []\n"
    else:
        text = "".join(f"{t}\n" for t in tags)
    write_output(text, output)
