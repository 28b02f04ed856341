"""Secret references: ``{vault://env/NAME}``, ``{vault://file/PATH}`` and
``{vault://aws/SECRET_ID/key}`` in any string field of any entity (credentials, plugin
configs such as ``config.redis.password``, certificate keys).

The node calls ``resolve_references(config)`` when it loads a config and gives the resolved
copy to its workers only; the stored revision, ``GET /config``, dumps and diffs keep the
reference text, so a secret is never written back resolved.

* ``env``: Kong's env vault: the name upper-cased, ``-`` → ``_``
  (``{vault://env/redis-password}`` reads ``REDIS_PASSWORD``).
* ``file``: the file's content without its trailing newline (a relative path is relative
  to the node's working directory) — for Docker/Kubernetes secret files.
* ``aws``: AWS Secrets Manager through boto3 (``pip install 'tollway[aws]'``): the secret's
  ``SecretString``; with ``/key`` the string is JSON and the key's value is used.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable
from typing import Any

from tollway.config.model import Config

REFERENCE = re.compile(r"^\{vault://([a-z0-9-]+)/(.+?)/?\}$")


class VaultError(ValueError):
    """A reference that cannot be resolved; the message names the entity field."""


def is_reference(value: Any) -> bool:
    return isinstance(value, str) and REFERENCE.match(value) is not None


def _env(rest: str) -> str:
    name = rest.upper().replace("-", "_")
    value = os.environ.get(name)
    if value is None:
        raise VaultError(f"environment variable {name} is not set")
    return value


def _file(rest: str) -> str:
    try:
        with open(rest, encoding="utf-8") as fh:
            return fh.read().rstrip("\r\n")
    except OSError as exc:
        raise VaultError(f"cannot read {rest}: {exc.strerror or exc}") from None


def _aws(rest: str) -> str:
    secret_id, _, key = rest.partition("/")
    try:
        import boto3  # optional extra: tollway[aws]
    except ImportError:
        raise VaultError("the aws vault needs boto3: pip install 'tollway[aws]'") from None
    try:
        client = boto3.client("secretsmanager")
        secret = client.get_secret_value(SecretId=secret_id)["SecretString"]
    except Exception as exc:  # botocore's errors: credentials, network, missing secret
        raise VaultError(f"AWS secret {secret_id!r}: {exc}") from None
    if not key:
        return str(secret)
    try:
        data = json.loads(secret)
    except ValueError:
        raise VaultError(f"AWS secret {secret_id!r} is not JSON; cannot read key "
                         f"{key!r}") from None
    if not isinstance(data, dict) or key not in data:
        raise VaultError(f"AWS secret {secret_id!r} has no key {key!r}")
    return str(data[key])


BACKENDS: dict[str, Callable[[str], str]] = {"env": _env, "file": _file, "aws": _aws}


def resolve(reference: str, cache: dict[str, str] | None = None) -> str:
    m = REFERENCE.match(reference)
    if not m:
        raise VaultError(f"not a vault reference: {reference!r}")
    if cache is not None and reference in cache:
        return cache[reference]
    backend = BACKENDS.get(m.group(1))
    if backend is None:
        raise VaultError(f"unknown vault {m.group(1)!r} (known: {', '.join(BACKENDS)})")
    value = backend(m.group(2))
    if cache is not None:
        cache[reference] = value
    return value


def resolve_references(config: Config) -> Config:
    """A copy of ``config`` with every vault reference replaced by its value. Returns
    ``config`` itself when it has none. Raises ``VaultError`` listing every failure as
    ``<entity>[<id or name>].<field path>: <reason>``."""
    cache: dict[str, str] = {}
    errors: list[str] = []
    found = False

    def walk(value: Any, where: str) -> Any:
        nonlocal found
        if isinstance(value, dict):
            return {k: walk(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if is_reference(value):
            found = True
            try:
                return resolve(value, cache)
            except VaultError as exc:
                errors.append(f"{where}: {value}: {exc}")
        return value

    entities: dict[str, list[dict[str, Any]]] = {}
    for name, rows in config.entities.items():
        out = []
        for row in rows:
            label = row.get("name") or row.get("username") or row.get("id")
            out.append({k: walk(v, f"{name}[{label}].{k}") if k != "id" else v
                        for k, v in row.items()})
        entities[name] = out
    if errors:
        raise VaultError("cannot resolve vault reference(s):\n  " + "\n  ".join(errors))
    if not found:
        return config
    resolved = Config.from_entities(copy.deepcopy(entities))
    # the hash is the configuration's identity: keep the one of the text that was stored
    return Config(entities=resolved.entities, hash=config.hash)
