"""``tollway file openapi2tollway -s SPEC``: an OpenAPI 3 spec → a declarative file (decK's
``file openapi2kong``)."""

from __future__ import annotations

import click

from tollway.cli.commands._reconcile_common import (
    dump_document,
    fail,
    output_options,
    read_document,
    write_output,
)
from tollway.reconcile.openapi import OpenAPIError, convert


@click.command("openapi2tollway")
@click.option("-s", "--spec", default="-", show_default=True,
              help="OpenAPI 3 spec (YAML or JSON; '-' is stdin).")
@click.option("--select-tag", "tags", multiple=True, metavar="TAG",
              help="Tag every generated entity (replaces the spec's x-kong-tags); repeatable.")
@click.option("--no-id", is_flag=True,
              help="Do not generate ids (default: UUIDv5 from the entity names).")
@click.option("--inso-compatible", is_flag=True,
              help="Name entities as Insomnia does ('-' separators, case kept).")
@output_options
def command(spec: str, tags: tuple[str, ...], no_id: bool, inso_compatible: bool,
            output: str, fmt: str) -> None:
    """Convert an OpenAPI 3 SPEC: one service per document (servers[0], x-kong-name or
    info.title), one route per path and method (regex path, path parameters captured),
    x-kong-plugin-* / x-kong-*-defaults / x-kong-tags extensions."""
    try:
        doc = convert(read_document(spec), tags=list(tags) if tags else None, no_id=no_id,
                      inso_compat=inso_compatible)
    except OpenAPIError as exc:
        fail(f"{spec}: {exc}")
    write_output(dump_document(doc, fmt), output)
