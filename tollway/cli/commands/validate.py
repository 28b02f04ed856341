"""``tollway config validate FILE...``: check declarative files without applying them."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from tollway.config.errors import ConfigError
from tollway.config.loader import load_file


def _error_line(filename: str, item: Any) -> str:
    where = f"{filename}:{item.line}" if item.line is not None else filename
    if item.path == filename:
        # file-level problems (unreadable, syntax error) have no path inside the document
        return f"{where}: {item.message}"
    return f"{where}: {item.path}: {item.message}"


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json-output", is_flag=True, help="Print a JSON report on stdout.")
def command(files: tuple[str, ...], json_output: bool) -> None:
    """Validate declarative configuration FILE(s) (YAML or JSON).

    Exit status is 0 when every file is valid, 1 otherwise.
    """
    report: list[dict[str, Any]] = []
    all_valid = True
    for filename in files:
        try:
            config = load_file(filename)
        except ConfigError as exc:
            all_valid = False
            report.append(
                {
                    "file": filename,
                    "valid": False,
                    "errors": [item.to_dict() for item in exc.errors],
                }
            )
            if not json_output:
                for item in exc.errors:
                    click.echo(_error_line(filename, item), err=True)
            continue
        counts = {name: len(rows) for name, rows in config.entities.items() if rows}
        report.append(
            {"file": filename, "valid": True, "hash": config.hash, "entities": counts, "errors": []}
        )
        if not json_output:
            click.echo(f"{filename}: OK")
    if json_output:
        click.echo(json.dumps({"valid": all_valid, "files": report}, indent=2))
    if not all_valid:
        # SystemExit, not click's Exit: the root CLI runs click with standalone_mode=False,
        # where click turns Exit into a return value that `main` does not propagate.
        sys.exit(1)
