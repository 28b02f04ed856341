"""`tollway mock`: serve MockServer expectation files, standing in for mockserver/mockserver."""

from __future__ import annotations

import click

from tollway.mock.expectations import Expectation, ExpectationError, load


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces, like MockServer's container)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint="--listen")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


@click.command("mock")
@click.option(
    "--expectations",
    "files",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False),
    help="MockServer expectation JSON file (a list or one object); repeatable.",
)
@click.option(
    "--listen",
    default="127.0.0.1:1080",
    show_default=True,
    help="Address to listen on, HOST:PORT.",
)
def command(files: tuple[str, ...], listen: str) -> None:
    """Run a mock upstream answering from MockServer expectation files.

    Also serves MockServer's PUT /mockserver/{expectation,clear,reset,status,retrieve}.
    """
    host, port = parse_listen(listen)
    expectations: list[Expectation] = []
    for path in files:
        try:
            expectations.extend(load(path))
        except ExpectationError as exc:
            # ClickException: "Error: <file>: <json path>: <problem>" on stderr, exit 1.
            raise click.ClickException(str(exc)) from None
    # Imported here so `tollway --help` does not pay for uvicorn and starlette.
    from tollway.mock.server import serve

    click.echo(
        f"tollway mock: {len(expectations)} expectation(s) from {', '.join(files)}; "
        f"listening on http://{host}:{port}",
        err=True,
    )
    serve(expectations, host, port)
