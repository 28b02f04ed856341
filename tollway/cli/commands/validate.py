"""``tollway config validate [--merge] FILE...``: check declarative files without applying
them, one by one or (``--merge``) as one configuration, as decK validates its state files.

``-`` (or ``/dev/stdin``) reads the configuration from stdin, as decK does. Plugins are
those the ``plugins`` setting enables (``TOLLWAY_PLUGINS``/``tollway.conf``), as Kong's
``config parse`` honours ``plugins``, so a file using an installed custom plugin validates.
A valid configuration is also linted for routes the router can never pick (warnings only:
the exit status is unchanged).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from tollway.config.errors import ConfigError
from tollway.config.loader import load_file, load_files

STDIN_NAMES = ("-", "/dev/stdin")


def _error_line(filename: str, item: Any) -> str:
    filename = item.file or filename
    where = f"{filename}:{item.line}" if item.line is not None else filename
    if item.path == filename:
        # file-level problems (unreadable, syntax error) have no path inside the document
        return f"{where}: {item.message}"
    return f"{where}: {item.path}: {item.message}"


@click.command("validate")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--json-output", is_flag=True, help="Print a JSON report on stdout.")
@click.option(
    "--merge",
    is_flag=True,
    help="Validate the files as one configuration (entity lists concatenated, references "
    "across files), as decK does with several state files and `tollway start -c A -c B`.",
)
def command(files: tuple[str, ...], json_output: bool, merge: bool) -> None:
    """Validate declarative configuration FILE(s) (YAML or JSON).

    FILE '-' (or /dev/stdin) is read from stdin. Custom plugins enabled by the `plugins`
    setting (TOLLWAY_PLUGINS) validate. Routes that can never match (another route always
    wins, or a tie decided by id) are reported as warnings.

    Exit status is 0 when every file is valid (warnings or not), 1 otherwise.
    """
    _configure_plugins()
    with _stdin_as_file(files) as (paths, shown):
        valid = (_validate_merged(paths, shown, json_output) if merge
                 else _validate_each(paths, shown, json_output))
    if not valid:
        # SystemExit, not click's Exit: the root CLI runs click with standalone_mode=False,
        # where click turns Exit into a return value that `main` does not propagate.
        sys.exit(1)


def _configure_plugins() -> None:
    from tollway import settings
    from tollway.plugins import registry

    try:
        registry.configure(settings.load().values["plugins"])
    except (settings.SettingsError, ValueError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


@contextmanager
def _stdin_as_file(files: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], dict[str, str]]]:
    """Stdin saved to a temporary file named by its format (JSON if it parses as JSON, else
    YAML, as Kong guesses for unnamed input), so both modes load it like any file; errors
    still name it '-'. Yields (paths to load, {temporary path: name to show})."""
    wanted = [f for f in files if f in STDIN_NAMES]
    if not wanted:
        yield files, {}
        return
    if len(wanted) > 1:
        click.echo("Error: stdin ('-') can be given only once", err=True)
        sys.exit(1)
    text = sys.stdin.read()
    try:
        json.loads(text)
        suffix = ".json"
    except ValueError:
        suffix = ".yaml"
    with tempfile.TemporaryDirectory(prefix="tollway-validate-") as tmp:
        path = os.path.join(tmp, "stdin" + suffix)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        yield tuple(path if f in STDIN_NAMES else f for f in files), {path: wanted[0]}


def _show_errors(exc: ConfigError, shown: dict[str, str]) -> None:
    """Name stdin's temporary file as the user did ('-') in every error item."""
    if shown:
        exc.errors[:] = [
            dataclasses.replace(item, file=shown.get(item.file or "", item.file),
                                path=shown.get(item.path, item.path))
            for item in exc.errors]


def _warnings(config: Any) -> list[dict[str, Any]]:
    from tollway.reconcile.lint import lint_routes

    return [w.to_dict() for w in lint_routes(config)]


def _echo_warnings(where: str, warnings: list[dict[str, Any]]) -> None:
    for w in warnings:
        click.echo(f"{where}: warning: {w['message']}", err=True)


def _counts(config: Any) -> dict[str, int]:
    return {name: len(rows) for name, rows in config.entities.items() if rows}


def _validate_each(files: tuple[str, ...], shown: dict[str, str], json_output: bool) -> bool:
    report: list[dict[str, Any]] = []
    all_valid = True
    for path in files:
        filename = shown.get(path, path)
        try:
            config = load_file(path)
        except ConfigError as exc:
            _show_errors(exc, shown)
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
        warnings = _warnings(config)
        report.append(
            {"file": filename, "valid": True, "hash": config.hash, "entities": _counts(config),
             "errors": [], "warnings": warnings}
        )
        if not json_output:
            _echo_warnings(filename, warnings)
            click.echo(f"{filename}: OK")
    if json_output:
        click.echo(json.dumps({"valid": all_valid, "files": report}, indent=2))
    return all_valid


def _validate_merged(files: tuple[str, ...], shown: dict[str, str], json_output: bool) -> bool:
    names = [shown.get(f, f) for f in files]
    report: dict[str, Any] = {"valid": True, "merged": True, "files": names}
    try:
        config = load_files(list(files))
    except ConfigError as exc:
        _show_errors(exc, shown)
        report.update(
            valid=False,
            errors=[{"file": item.file or names[0], **item.to_dict()} for item in exc.errors],
        )
        if not json_output:
            for item in exc.errors:
                click.echo(_error_line(names[0], item), err=True)
    else:
        warnings = _warnings(config)
        report.update(hash=config.hash, entities=_counts(config), errors=[], warnings=warnings)
        if not json_output:
            _echo_warnings(", ".join(names), warnings)
            click.echo(f"{', '.join(names)}: OK (merged)")
    if json_output:
        click.echo(json.dumps(report, indent=2))
    return bool(report["valid"])
