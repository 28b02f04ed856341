"""Options and helpers shared by the config-as-code commands (not a command itself)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click
import yaml

from tollway.config.errors import ConfigError
from tollway.reconcile.client import DEFAULT_ADMIN_URL, AdminClient, AdminError
from tollway.reconcile.files import FileError, State, config_error_lines, load_state
from tollway.reconcile.templates import Environment, TemplateError


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def admin_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--admin-url / --admin-token / --header, with TOLLWAY_ADMIN_URL / _TOKEN."""
    @click.option("--admin-url", envvar="TOLLWAY_ADMIN_URL", default=DEFAULT_ADMIN_URL,
                  show_default=True, help="Admin API address (env TOLLWAY_ADMIN_URL).")
    @click.option("--admin-token", envvar="TOLLWAY_ADMIN_TOKEN", default=None,
                  help="Admin API token (env TOLLWAY_ADMIN_TOKEN).")
    @click.option("--header", "headers", multiple=True, metavar="K:V",
                  help="Extra header on every admin request (repeatable).")
    @click.option("--timeout", default=30.0, show_default=True, type=float,
                  help="Seconds to wait for each admin request.")
    @functools.wraps(fn)
    def wrapper(*args: Any, admin_url: str, admin_token: str | None,
                headers: tuple[str, ...], timeout: float, **kwargs: Any) -> Any:
        try:
            client = AdminClient(admin_url, admin_token, headers, timeout)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--header") from None
        try:
            return fn(*args, client=client, **kwargs)
        except AdminError as exc:
            fail(str(exc))
        finally:
            client.close()

    return wrapper


def env_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--env", "env_name", default=None, metavar="NAME",
                  help="Render with environments/NAME.yaml (beside the first file).")
    @click.option("--env-dir", default=None, type=click.Path(file_okay=False),
                  help="Folder holding the environment files (default: "
                       "<first file's folder>/environments).")
    @functools.wraps(fn)
    def wrapper(*args: Any, env_name: str | None, env_dir: str | None, **kwargs: Any) -> Any:
        files = kwargs.get("files") or ("-",)
        try:
            env = Environment.load(files[0], env_name, env_dir)
        except TemplateError as exc:
            fail(str(exc))
        return fn(*args, env=env, **kwargs)

    return wrapper


def load_or_fail(files: tuple[str, ...], env: Environment,
                 select_tags: tuple[str, ...] = ()) -> State:
    """Desired state from FILES, or exit 1 with every error (nothing is contacted)."""
    try:
        return load_state(list(files) or ["-"], env=env, select_tags=list(select_tags))
    except ConfigError as exc:
        for line in config_error_lines(exc):
            click.echo(line, err=True)
        fail(f"the configuration is invalid ({len(exc.errors)} error(s)); nothing was "
             f"changed")
    except (FileError, TemplateError) as exc:
        fail(str(exc))


def write_output(text: str, output: str | None) -> None:
    if output and output != "-":
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or exc}")
    else:
        click.echo(text, nl=not text.endswith("\n"))


def dump_document(doc: Any, fmt: str) -> str:
    if fmt == "json":
        import json

        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def colour_enabled(no_color: bool) -> bool:
    if no_color or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def read_document(name: str, env: Environment | None = None, mock: bool = False) -> Any:
    """One file (or '-') parsed, templates rendered when ``env`` is given."""
    from tollway.config.loader import parse_text
    from tollway.reconcile.files import read_text
    from tollway.reconcile.templates import render

    try:
        text = read_text(name)
        if env is not None:
            text = render(text, env, source=name, mock=mock)
        label = name if name != "-" and name.lower().endswith((".json", ".yaml", ".yml")) \
            else "stdin.yaml"
        return parse_text(text, label)[0]
    except (FileError, TemplateError) as exc:
        fail(str(exc))
    except ConfigError as exc:
        fail(f"{name}: {exc.errors[0].message}")


def output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
                      show_default=True)(fn)
    return click.option("-o", "--output-file", "output", default="-", show_default=True,
                        help="Where to write ('-' is stdout).")(fn)
