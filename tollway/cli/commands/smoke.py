"""``tollway smoke URL``: the seed's smoke tests (``curl -f``), one line per check."""

from __future__ import annotations

import sys
import time

import click
import httpx


@click.command("smoke")
@click.argument("url")
@click.option("--route", "routes", multiple=True, metavar="PATH",
              help="Path to request under URL (repeatable; default: URL itself).")
@click.option("-H", "--header", "headers", multiple=True, metavar="K:V")
@click.option("--expect", "expect", multiple=True, type=int, metavar="STATUS",
              help="Accepted status codes (default: anything below 400, as curl -f).")
@click.option("--timeout", default=10.0, show_default=True, type=float)
@click.option("--retries", default=0, show_default=True, type=int,
              help="Retry a failed check this many times, 1 s apart.")
def command(url: str, routes: tuple[str, ...], headers: tuple[str, ...],
            expect: tuple[int, ...], timeout: float, retries: int) -> None:
    """GET URL (or each --route under it); exit 1 if any check fails."""
    hdrs = {}
    for item in headers:
        k, sep, v = item.partition(":")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected 'name:value'", param_hint="-H")
        hdrs[k.strip()] = v.strip()
    targets = [url.rstrip("/") + (r if r.startswith("/") else "/" + r) for r in routes] or [url]
    failed = 0
    with httpx.Client(timeout=timeout, headers=hdrs) as client:
        for target in targets:
            for attempt in range(retries + 1):
                started = time.monotonic()
                try:
                    status: int | str = client.get(target).status_code
                except httpx.HTTPError as exc:
                    status = f"error: {exc}"
                ms = (time.monotonic() - started) * 1000
                ok = isinstance(status, int) and (status in expect if expect else status < 400)
                if ok or attempt == retries:
                    break
                time.sleep(1)
            click.echo(f"{'PASS' if ok else 'FAIL'}  {status}  {ms:7.1f} ms  GET {target}")
            failed += not ok
    click.echo(f"{len(targets) - failed}/{len(targets)} passed")
    if failed:
        sys.exit(1)
