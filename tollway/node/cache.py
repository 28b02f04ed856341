"""The last applied config, cached on disk (`<prefix>/config_cache.json`), so a node that
starts while its database is unreachable serves what it served before instead of nothing.

The file holds the config as stored (vault references unresolved, like the revision
itself), its revision number and hash, and its entities' created_at / updated_at. It is
written after every applied config by writing a temporary file and renaming it over the old
one, so a crash mid-write leaves the previous cache intact. Mode 0600: credentials are in
it, as they are in the database.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from tollway.config.model import Config
from tollway.controlplane.store.times import Times, decode

log = logging.getLogger("tollway.node")

CACHE_FILE = "config_cache.json"


def path(prefix: Path) -> Path:
    return prefix / CACHE_FILE


def save(prefix: Path, config: Config, revision: int | None, times: Times | None = None
         ) -> None:
    target = path(prefix)
    tmp = target.with_suffix(".tmp")
    data = json.dumps({"revision": revision, "hash": config.hash,
                       "entities": config.entities, "times": times or {}},
                      separators=(",", ":"))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(data)
    os.replace(tmp, target)


def load(prefix: Path) -> tuple[Config, int | None, Times | None] | None:
    """(config, revision, entity times) from the cache; None when there is none or it is
    unreadable (then logged: a damaged cache must not pass for an empty config)."""
    target = path(prefix)
    try:
        raw = json.loads(target.read_text(encoding="utf-8"))
        config = Config.from_entities(raw["entities"])
        revision = raw.get("revision")
        # a cache written before times were kept has none
        times = decode(raw["times"]) if raw.get("times") else None
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("cannot read the config cache %s: %s", target, exc)
        return None
    if config.hash != raw.get("hash"):
        log.error("the config cache %s is damaged (hash mismatch); ignoring it", target)
        return None
    return config, revision if isinstance(revision, int) else None, times
