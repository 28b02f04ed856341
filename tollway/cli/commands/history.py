"""``tollway config history``: the node's stored revisions, newest first."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from tollway.cli.commands._reconcile_common import admin_options
from tollway.reconcile.client import AdminClient


def _when(value: Any) -> str:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(value or "")


@click.command("history")
@click.option("--json-output", is_flag=True, help="Print the revisions as JSON.")
@click.option("-n", "--limit", default=20, show_default=True, help="How many to show.")
@admin_options
def command(json_output: bool, limit: int, client: AdminClient) -> None:
    """List the stored config revisions: number, time, author, message, hash."""
    rows = sorted(client.revisions(limit), key=lambda r: r.get("revision") or 0, reverse=True)
    rows = rows[:limit]
    if json_output:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'REV':>5}  {'CREATED (UTC)':19}  {'AUTHOR':16}  {'HASH':32}  MESSAGE")
    for r in rows:
        click.echo(f"{r.get('revision', ''):>5}  {_when(r.get('created_at')):19}  "
                   f"{str(r.get('author') or '-')[:16]:16}  {r.get('hash') or ''!s:32}  "
                   f"{r.get('message') or ''}")
