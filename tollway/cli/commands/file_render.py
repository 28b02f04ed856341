"""``tollway file render FILE...``: resolve templates and overlays, merge, print."""

from __future__ import annotations

import click

from tollway.cli.commands._reconcile_common import (
    dump_document,
    env_options,
    fail,
    output_options,
    read_document,
    write_output,
)
from tollway.reconcile.files import FileError, merge_documents
from tollway.reconcile.templates import Environment, scale_rate_limits


@click.command("render")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--mock-env-vars", is_flag=True,
              help="Write ${{ env \"DECK_X\" }} as the variable's name (decK's default).")
@output_options
@env_options
def command(files: tuple[str, ...], mock_env_vars: bool, output: str, fmt: str,
            env: Environment) -> None:
    """Render FILE(s) into one file: ${VAR}, ${VAR:-default} and ${{ env "DECK_X" }}
    substituted, --env overlay values and rate-limit multiplier applied, files merged.

    Example: tollway file render config/gateway.yaml --env production -o gateway.prod.yaml
    """
    docs = [(name, read_document(name, env, mock_env_vars)) for name in files or ("-",)]
    try:
        merged = merge_documents(docs)
    except FileError as exc:
        fail(str(exc))
    scale_rate_limits(merged, env.rate_limit_multiplier)
    write_output(dump_document(merged, fmt), output)
