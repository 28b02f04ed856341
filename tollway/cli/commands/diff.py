"""``tollway config diff FILE...``: what a sync would change (decK's ``gateway diff``)."""

from __future__ import annotations

import json
import sys

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
from tollway.reconcile.sync import compute
from tollway.reconcile.templates import Environment

DRIFT = 2


@click.command("diff")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--select-tag", "select_tags", multiple=True, metavar="TAG",
              help="Only entities carrying every TAG are compared (decK semantics).")
@click.option("--json-output", is_flag=True, help="Print decK's JSON document instead.")
@click.option("--non-zero-exit-code", is_flag=True,
              help="Exit 2 when there are changes, 0 when none (1 on error).")
@click.option("--no-color", is_flag=True, help="Never colour the output.")
@click.option("--no-mask-values", is_flag=True,
              help="Show values substituted from the environment instead of [masked].")
@env_options
@admin_options
def command(files: tuple[str, ...], select_tags: tuple[str, ...], json_output: bool,
            non_zero_exit_code: bool, no_color: bool, no_mask_values: bool,
            env: Environment, client: AdminClient) -> None:
    """Show what `config sync FILE...` would change on the node, without changing it.

    Defaults are filled on both sides, so a file equal to the running config shows no
    change. FILE may be '-' for stdin (the default); several files are merged.
    """
    state = load_or_fail(files, env, select_tags)
    try:
        outcome = compute(client, state)
    except PlanError as exc:
        fail(str(exc))
    masker = Masker([] if no_mask_values else state.substituted)
    if json_output:
        click.echo(json.dumps(render_json(outcome.plan, masker), indent=2))
    else:
        render_text(outcome.plan, masker, colour_enabled(no_color), click.echo)
    if non_zero_exit_code and outcome.plan.changed:
        sys.exit(DRIFT)
