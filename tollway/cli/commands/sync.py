"""``tollway config sync FILE...``: make the node match the files, as one atomic revision
(decK's ``gateway sync``); ``apply`` is the same without deletes."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from tollway.cli.commands._reconcile_common import (
    admin_options,
    colour_enabled,
    env_options,
    fail,
    load_or_fail,
)
from tollway.reconcile.client import AdminClient
from tollway.reconcile.diff import PlanError
from tollway.reconcile.output import Masker, render_json, render_text
from tollway.reconcile.sync import apply_plan, compute
from tollway.reconcile.templates import Environment

PROGRESS_THRESHOLD = 100  # entities: below this a sync is instant and needs no progress


def _progress(enabled: bool, message: str) -> None:
    if enabled:
        click.echo(f"... {message}", err=True)


def run(files: tuple[str, ...], select_tags: tuple[str, ...], message: str | None,
        json_output: bool, no_color: bool, no_mask_values: bool, env: Environment,
        client: AdminClient, *, delete: bool) -> None:
    state = load_or_fail(files, env, select_tags)
    size = sum(len(rows) for rows in state.config.entities.values())
    show = sys.stderr.isatty() or size >= PROGRESS_THRESHOLD
    _progress(show, f"read {size} entities from {', '.join(files) or 'stdin'}; "
                    f"reading the running config from {client.url}")
    try:
        outcome = compute(client, state, delete=delete)
    except PlanError as exc:
        fail(str(exc))
    masker = Masker([] if no_mask_values else state.substituted)
    if outcome.plan.changed:
        _progress(show, f"applying {len(outcome.plan.events)} change(s) as one revision")
    apply_plan(client, outcome, message=message)
    if json_output:
        doc: dict[str, Any] = render_json(outcome.plan, masker)
        doc["revision"] = outcome.revision
        doc["applied"] = outcome.applied
        click.echo(json.dumps(doc, indent=2))
        return
    render_text(outcome.plan, masker, colour_enabled(no_color), click.echo)
    if outcome.applied:
        click.echo(f"Applied as revision {outcome.revision}.")
    else:
        click.echo(f"No changes; the node stays at revision {outcome.revision}.")


def options(fn: Any) -> Any:
    for decorator in reversed([
        click.argument("files", nargs=-1, type=click.Path(dir_okay=False, allow_dash=True)),
        click.option("--select-tag", "select_tags", multiple=True, metavar="TAG",
                     help="Manage only entities carrying every TAG; others are left "
                          "untouched (decK semantics)."),
        click.option("--message", "-m", default=None,
                     help="Message stored with the new revision."),
        click.option("--json-output", is_flag=True, help="Print decK's JSON document."),
        click.option("--no-color", is_flag=True, help="Never colour the output."),
        click.option("--no-mask-values", is_flag=True,
                     help="Show values substituted from the environment."),
        env_options,
        admin_options,
    ]):
        fn = decorator(fn)
    return fn


@click.command("sync")
@options
def command(files: tuple[str, ...], select_tags: tuple[str, ...], message: str | None,
            json_output: bool, no_color: bool, no_mask_values: bool, env: Environment,
            client: AdminClient) -> None:
    """Make the node match FILE(s): create, update and delete entities.

    The whole result is validated and stored by the node as one revision (printed), or
    not at all. With --select-tag only entities carrying the tag(s) are touched.
    """
    run(files, select_tags, message, json_output, no_color, no_mask_values, env, client,
        delete=True)
