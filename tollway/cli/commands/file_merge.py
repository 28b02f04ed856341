"""``tollway file merge FILE...``: concatenate partial files (decK's ``file merge``)."""

from __future__ import annotations

import click

from tollway.cli.commands._reconcile_common import (
    dump_document,
    fail,
    output_options,
    read_document,
    write_output,
)
from tollway.reconcile.files import FileError, merge_documents


@click.command("merge")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, allow_dash=True))
@output_options
def command(files: tuple[str, ...], output: str, fmt: str) -> None:
    """Merge FILE(s): top-level entity arrays concatenated; _format_version and
    _transform must agree. Templates are left as written; nothing is validated."""
    try:
        merged = merge_documents([(name, read_document(name)) for name in files])
    except FileError as exc:
        fail(str(exc))
    write_output(dump_document(merged, fmt), output)
