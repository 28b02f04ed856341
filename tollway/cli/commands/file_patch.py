"""``tollway file patch``: JSONPath edits (decK's ``file patch``)."""

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
from tollway.reconcile.patch import PatchError, apply_patch, apply_patch_file, parse_values


@click.command("patch")
@click.argument("patch_files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("-s", "--state", "state", default="-", show_default=True,
              help="The file to patch ('-' is stdin).")
@click.option("--selector", "selectors", multiple=True, metavar="JSONPATH",
              help="What to patch (repeatable; default '$').")
@click.option("--value", "values", multiple=True, metavar="K:V",
              help="'key:json' sets a field ('key:' removes it); a bare JSON value is "
                   "appended to selected arrays (repeatable).")
@output_options
def command(patch_files: tuple[str, ...], state: str, selectors: tuple[str, ...],
            values: tuple[str, ...], output: str, fmt: str) -> None:
    """Apply --selector/--value edits, then PATCH_FILE(s), to the --state file.

    Emergency rate limit (the runbook):

      tollway file patch -s gateway.yaml -o gateway.yaml \\
        --selector "$..plugins[?(@.name=='rate-limiting')].config" --value minute:10
    """
    doc = read_document(state)
    try:
        if values or selectors:
            fields, appends = parse_values(values)
            if fields and appends:
                fail("--value: mix of 'key:value' and values to append; use a patch file")
            n = apply_patch(doc, list(selectors) or ["$"], fields if fields else appends)
            if n == 0:
                fail(f"selector(s) {', '.join(selectors)} matched nothing; nothing written")
        for name in patch_files:
            apply_patch_file(doc, read_document(name), name)
    except (PatchError, JSONPathError) as exc:
        fail(str(exc))
    write_output(dump_document(doc, fmt), output)
