"""The `tollway` command: a thin click shell over the library.

Exit codes: 0 success, 1 invalid input or failure, 64 usage error (never 2, which
`config diff --non-zero-exit-code` reserves for drift, as decK does).
"""

from __future__ import annotations

import sys

import click

from tollway import __version__

USAGE_ERROR = 64


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tollway")
def cli() -> None:
    """tollway: a Kong-compatible API gateway."""


@cli.group()
def config() -> None:
    """Declarative configuration on a node: validate, diff, sync, apply, dump, history,
    rollback (decK's `gateway` commands)."""


@cli.group()
def file() -> None:
    """Offline edits of state files: render, merge, patch, tags (decK's `file` commands)."""


def _register() -> None:
    # Commands live one per module; importing them here keeps `main` the only entry point.
    from tollway.cli import commands

    commands.register(cli, config, file)


def main(argv: list[str] | None = None) -> None:
    _register()
    try:
        # standalone_mode=False hands click's Exit back as a return value, not SystemExit.
        rv = cli.main(args=argv, standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except click.exceptions.UsageError as exc:
        exc.show()
        sys.exit(USAGE_ERROR)
    except click.exceptions.Abort:
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
