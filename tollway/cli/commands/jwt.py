"""``tollway jwt sign``: a development token from a consumer's jwt credential."""

from __future__ import annotations

import json
import time
from typing import Any

import click
import jwt as pyjwt

from tollway.cli.commands._reconcile_common import env_options, fail, load_or_fail
from tollway.reconcile.templates import Environment


@click.group("jwt")
def command() -> None:
    """JWT helpers for development."""


@command.command("sign")
@click.option("--consumer", required=True, help="Username (or custom_id) of the consumer.")
@click.option("--config", "files", multiple=True, required=True,
              type=click.Path(dir_okay=False), help="Declarative file(s) with the consumer.")
@click.option("--key", "key", default=None, help="Which jwt_secrets key (default: the first).")
@click.option("--key-claim-name", default="iss", show_default=True,
              help="The claim carrying the credential key (the jwt plugin's key_claim_name).")
@click.option("--expires-in", default=3600, show_default=True, type=int,
              help="Seconds until `exp` (0: no exp claim).")
@click.option("--claim", "claims", multiple=True, metavar="K=JSON", help="Extra claims.")
@env_options
def sign(consumer: str, files: tuple[str, ...], key: str | None, key_claim_name: str,
         expires_in: int, claims: tuple[str, ...], env: Environment) -> None:
    """Print an HS256/384/512 token for CONSUMER's jwt credential (never for production)."""
    config = load_or_fail(files, env).config
    found = [c for c in config.entities["consumers"]
             if consumer in (c.get("username"), c.get("custom_id"))]
    if not found:
        fail(f"no consumer {consumer!r} in {', '.join(files)}")
    secrets = [s for s in config.entities["jwt_secrets"]
               if (s.get("consumer") or {}).get("id") == found[0]["id"]
               and (key is None or s.get("key") == key)]
    if not secrets:
        fail(f"consumer {consumer!r} has no jwt credential" + (f" with key {key!r}" if key
                                                                 else ""))
    cred = secrets[0]
    algorithm = cred.get("algorithm") or "HS256"
    if not algorithm.startswith("HS"):
        fail(f"credential {cred.get('key')!r} uses {algorithm}: the file holds only the public "
             f"key, so tokens must be signed with the private key elsewhere")
    payload: dict[str, Any] = {key_claim_name: cred["key"]}
    now = int(time.time())
    if expires_in:
        payload["exp"] = now + expires_in
    for item in claims:
        k, sep, raw = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected K=JSON", param_hint="--claim")
        try:
            payload[k] = json.loads(raw)
        except ValueError:
            payload[k] = raw
    click.echo(pyjwt.encode(payload, cred["secret"], algorithm=algorithm))
