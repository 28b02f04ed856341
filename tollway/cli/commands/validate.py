"""``tollway config validate [--merge] FILE...``: check declarative files without applying
them, one by one or (``--merge``) as one configuration, as decK validates its state files."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from tollway.config.errors import ConfigError
from tollway.config.loader import load_file, load_files


def _error_line(filename: str, item: Any) -> str:
    filename = item.file or filename
    where = f"{filename}:{item.line}" if item.line is not None else filename
    if item.path == filename:
        # file-level problems (unreadable, syntax error) have no path inside the document
        return f"{where}: {item.message}"
    return f"{where}: {item.path}: {item.message}"


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json-output", is_flag=True, help="Print a JSON report on stdout.")
@click.option(
    "--merge",
    is_flag=True,
    help="Validate the files as one configuration (entity lists concatenated, references "
    "across files), as decK does with several state files and `tollway start -c A -c B`.",
)
def command(files: tuple[str, ...], json_output: bool, merge: bool) -> None:
    """Validate declarative configuration FILE(s) (YAML or JSON).

    Exit status is 0 when every file is valid, 1 otherwise.
    """
    valid = _validate_merged(files, json_output) if merge else _validate_each(files, json_output)
    if not valid:
        # SystemExit, not click's Exit: the root CLI runs click with standalone_mode=False,
        # where click turns Exit into a return value that `main` does not propagate.
        sys.exit(1)


def _counts(config: Any) -> dict[str, int]:
    return {name: len(rows) for name, rows in config.entities.items() if rows}


def _validate_each(files: tuple[str, ...], json_output: bool) -> bool:
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
        report.append(
            {"file": filename, "valid": True, "hash": config.hash, "entities": _counts(config),
             "errors": []}
        )
        if not json_output:
            click.echo(f"{filename}: OK")
    if json_output:
        click.echo(json.dumps({"valid": all_valid, "files": report}, indent=2))
    return all_valid


def _validate_merged(files: tuple[str, ...], json_output: bool) -> bool:
    names = list(files)
    report: dict[str, Any] = {"valid": True, "merged": True, "files": names}
    try:
        config = load_files(names)
    except ConfigError as exc:
        report.update(
            valid=False,
            errors=[{"file": item.file or names[0], **item.to_dict()} for item in exc.errors],
        )
        if not json_output:
            for item in exc.errors:
                click.echo(_error_line(names[0], item), err=True)
    else:
        report.update(hash=config.hash, entities=_counts(config), errors=[])
        if not json_output:
            click.echo(f"{', '.join(names)}: OK (merged)")
    if json_output:
        click.echo(json.dumps(report, indent=2))
    return bool(report["valid"])
