"""`tollway migrations bootstrap | up | status | reset`: the database schema, as
`kong migrations` manages Kong's (messages and `list` exit codes as Kong's).

SQLite needs none of this (`tollway start` migrates it); PostgreSQL, shared by several
nodes, is migrated by an operator with these commands before the nodes start.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from tollway import settings as settings_mod

# `status` exit codes, as `kong migrations list`: up to date 0, not bootstrapped 3, new
# migrations 5 (Kong's 4, "pending" two-phase migrations, does not exist here)
NEEDS_BOOTSTRAP_EXIT = 3
NEW_MIGRATIONS_EXIT = 5


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--conf", "conf_path", type=click.Path(dir_okay=False),
                      help="Settings file in kong.conf syntax (default: $TOLLWAY_CONF).")(fn)
    fn = click.option("-p", "--prefix",
                      help="Working and data directory (setting `prefix`).")(fn)
    return fn


def _open(conf_path: str | None, prefix: str | None) -> Any:
    from tollway.controlplane.store import Store, StoreError

    try:
        settings = settings_mod.load(conf_path,
                                     overrides={"prefix": prefix} if prefix else None)
    except settings_mod.SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    if settings.database == "off":
        raise click.ClickException("database=off: DB-less nodes have no database to migrate")
    try:
        return Store.open(settings)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc


def _run(fn: Callable[[Any], int]) -> Callable[[str | None, str | None], None]:
    """Open the store, run `fn(store)`, turn store errors into exit 1."""
    def wrapper(conf_path: str | None, prefix: str | None, **_: Any) -> None:
        from tollway.controlplane.store import StoreError

        store = _open(conf_path, prefix)
        try:
            code = fn(store)
        except StoreError as exc:
            raise click.ClickException(f"{store.description}: {exc}") from exc
        finally:
            store.close()
        sys.exit(code)
    return wrapper


@click.group("migrations")
def command() -> None:
    """Manage the database schema (bootstrap, up, status, reset)."""


def _bootstrap(store: Any) -> int:
    from tollway.controlplane.store import migrate

    if not migrate.schema_state(store.engine).needs_bootstrap:
        click.echo("Database already bootstrapped")
        return 0
    click.echo(f"Bootstrapping database ({store.description})...")
    for rev in migrate.upgrade(store.engine):
        click.echo(f"  applied {rev}")
    click.echo("Database is up-to-date")
    return 0


def _up(store: Any) -> int:
    from tollway.controlplane.store import migrate

    state = migrate.schema_state(store.engine)
    if state.needs_bootstrap:
        raise click.ClickException("Cannot run migrations: database needs bootstrapping; "
                                   "run 'tollway migrations bootstrap'")
    if not state.new:
        click.echo("Database is already up-to-date")
        return 0
    for rev in migrate.upgrade(store.engine):
        click.echo(f"  applied {rev}")
    click.echo("Database is up-to-date")
    return 0


def _status(store: Any) -> int:
    from tollway.controlplane.store import migrate

    state = migrate.schema_state(store.engine)
    if state.needs_bootstrap:
        click.echo(migrate.NEEDS_BOOTSTRAP)
        return NEEDS_BOOTSTRAP_EXIT
    executed, new = migrate.describe_state(state)
    click.echo("Executed migrations:")
    for line in executed:
        click.echo(f"  {line}")
    if new:
        click.echo("New migrations available:")
        for line in new:
            click.echo(f"  {line}")
        click.echo(f"\n{migrate.NEW_MIGRATIONS}")
        return NEW_MIGRATIONS_EXIT
    click.echo("\nDatabase is up-to-date")
    return 0


def _reset(store: Any) -> int:
    from tollway.controlplane.store import migrate

    if migrate.schema_state(store.engine).needs_bootstrap:
        click.echo("Database not bootstrapped, nothing to reset")
        return 1
    click.echo(f"Resetting database ({store.description})...")
    migrate.reset(store.engine)
    click.echo("Database successfully reset")
    return 0


@command.command("bootstrap")
@_common
def bootstrap(conf_path: str | None, prefix: str | None) -> None:
    """Create the schema and run every migration."""
    _run(_bootstrap)(conf_path, prefix)


@command.command("up")
@_common
def up(conf_path: str | None, prefix: str | None) -> None:
    """Run any new migrations."""
    _run(_up)(conf_path, prefix)


@command.command("status")
@_common
def status(conf_path: str | None, prefix: str | None) -> None:
    """List executed and new migrations (exit 0 up to date, 3 not bootstrapped, 5 new)."""
    _run(_status)(conf_path, prefix)


command.add_command(status, "list")  # Kong's name for it


@command.command("reset")
@_common
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def reset(conf_path: str | None, prefix: str | None, yes: bool) -> None:
    """Drop every table tollway created: all revisions and counters (irreversible)."""
    if not yes:
        if not sys.stdin.isatty():
            raise click.ClickException("not a tty: invoke 'reset' non-interactively with the "
                                       "--yes flag")
        if not click.confirm("Are you sure? This operation is irreversible.", default=False):
            click.echo("cancelled")
            return
    _run(_reset)(conf_path, prefix)
