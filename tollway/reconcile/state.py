"""A ``Config`` seen the way decK sees it: every entity under a stable identity key, with its
foreign keys written as the friendly identity of what they point to (go-database-reconciler
``pkg/state``).

Ids are not identities: a file without ids gets random ids for unnamed entities and the
Admin API gives random ids to everything, so two configs are compared by the keys decK uses
(name, username, the plugin's (name, service, route, consumer), the target's (upstream,
target), a credential's key, a certificate's content) and the id of the running entity is kept
on update.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tollway.config.entities import ENTITIES
from tollway.config.model import Config

# plural entity name -> decK's kind, in decK's dependency order (gdr pkg/diff/order.go):
#
#   level 1  certificates  ca_certificates  consumers
#   level 2  snis  services  upstreams  credentials (key-auth, jwt-auth)
#   level 3  routes  targets
#   level 4  plugins
#
# Creates and updates run top-down, deletes bottom-up (tollway applies the whole result as
# one revision, so the order only decides the order of the printed events).
KINDS: dict[str, str] = {
    "certificates": "certificate",
    "ca_certificates": "ca-certificate",
    "consumers": "consumer",
    "snis": "sni",
    "services": "service",
    "upstreams": "upstream",
    "keyauth_credentials": "key-auth",
    "jwt_secrets": "jwt-auth",
    "routes": "route",
    "targets": "target",
    "plugins": "plugin",
}
LEVELS: dict[str, int] = {
    "certificates": 1, "ca_certificates": 1, "consumers": 1,
    "snis": 2, "services": 2, "upstreams": 2, "keyauth_credentials": 2, "jwt_secrets": 2,
    "routes": 3, "targets": 3,
    "plugins": 4,
}
# fields whose values never appear in diff output (credentials and private keys)
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "keyauth_credentials": ("key",),
    "jwt_secrets": ("secret",),
    "certificates": ("key", "key_alt"),
}
# plugin config fields that carry secrets, by name wherever they appear in a plugin config
SECRET_CONFIG_KEYS = frozenset({"password", "redis_password", "secret", "client_secret",
                                "private_key", "api_key", "token"})

Key = tuple[str, ...]


def _digest(value: Any) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()[:16]


@dataclass
class Entry:
    """One entity: ``key`` identifies it across configs, ``view`` is what is compared."""

    entity: str  # plural name
    key: Key
    name: str  # decK's friendly name for output
    raw: dict[str, Any]  # the entity as in the Config (with ids)
    view: dict[str, Any]

    @property
    def kind(self) -> str:
        return KINDS[self.entity]

    @property
    def tags(self) -> list[str]:
        return list(self.raw.get("tags") or [])


class State:
    """Every entity of a Config, by (entity, key)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._by_id = {name: {e["id"]: e for e in rows}
                       for name, rows in config.entities.items()}
        self.entries: dict[tuple[str, Key], Entry] = {}
        for name in KINDS:
            for row in config.entities.get(name) or ():
                entry = self._entry(name, row)
                self.entries[(name, entry.key)] = entry

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries.values())

    def get(self, entity: str, key: Key) -> Entry | None:
        return self.entries.get((entity, key))

    # -- identities ---------------------------------------------------------------------
    def _ref(self, entity: str, ref: Any) -> Key | None:
        if not isinstance(ref, dict) or ref.get("id") is None:
            return None
        target = self._by_id.get(entity, {}).get(ref["id"])
        if target is None:
            return ("id", str(ref["id"]))
        return self.identity(entity, target)

    def identity(self, entity: str, row: dict[str, Any]) -> Key:
        if entity in ("services", "routes", "upstreams", "snis"):
            return ("name", row["name"]) if row.get("name") else ("id", row["id"])
        if entity == "consumers":
            if row.get("username"):
                return ("username", row["username"])
            if row.get("custom_id"):
                return ("custom_id", row["custom_id"])
            return ("id", row["id"])
        if entity == "plugins":
            if row.get("instance_name"):
                return ("instance_name", row["instance_name"])
            parts: list[str] = ["plugin", row["name"]]
            for fk, ref_entity in (("service", "services"), ("route", "routes"),
                                   ("consumer", "consumers")):
                ref = self._ref(ref_entity, row.get(fk))
                parts.append("/".join(ref) if ref else "")
            return tuple(parts)
        if entity == "targets":
            up = self._ref("upstreams", row.get("upstream")) or ("",)
            return ("target", "/".join(up), str(row.get("target")))
        if entity in ("keyauth_credentials", "jwt_secrets"):
            return ("key", _digest(row.get("key")))
        if entity in ("certificates", "ca_certificates"):
            return ("cert", _digest(row.get("cert")))
        return ("id", row["id"])

    def friendly(self, entity: str, row: dict[str, Any]) -> str:
        """decK's ``<name>`` in ``creating <kind> <name>``."""
        def label(ref_entity: str, fk: str) -> str | None:
            ref = self._ref(ref_entity, row.get(fk))
            return ref[-1] if ref else None

        if entity == "plugins":
            scopes = [(k, label(e, k)) for k, e in
                      (("service", "services"), ("route", "routes"), ("consumer", "consumers"))]
            present = [f"{k} {v}" for k, v in scopes if v]
            base = row.get("instance_name") or row["name"]
            return f"{base} for {' and '.join(present)}" if present else f"{base} (global)"
        if entity == "targets":
            return f"{row.get('target')} for upstream {label('upstreams', 'upstream')}"
        if entity == "jwt_secrets":
            return f"{row.get('key')} for consumer {label('consumers', 'consumer')}"
        if entity == "keyauth_credentials":
            # the key is the secret: name the credential by its id, as decK does for keys
            return f"{row['id']} for consumer {label('consumers', 'consumer')}"
        key = self.identity(entity, row)
        return key[-1] if key[0] != "cert" else row["id"]

    def _entry(self, entity: str, row: dict[str, Any]) -> Entry:
        key = self.identity(entity, row)
        view = copy.deepcopy(row)
        if key[0] != "id":
            view.pop("id", None)
        for fk, ref_entity in foreign_fields(entity):
            if view.get(fk) is not None:
                ref = self._ref(ref_entity, view[fk])
                view[fk] = {ref[0]: ref[1]} if ref else view[fk]
        view = {k: v for k, v in view.items() if v is not None}
        return Entry(entity, key, self.friendly(entity, row), row, view)


def foreign_fields(entity: str) -> tuple[tuple[str, str], ...]:
    """(field, referenced entity) pairs of an entity, from its schema."""
    spec = ENTITIES.get(entity)
    return tuple(spec.foreign_fields.items()) if spec is not None else ()


def has_tags(row: dict[str, Any], tags: Iterable[str]) -> bool:
    """decK's select-tag scope: an entity is managed when it carries *all* the tags."""
    own = set(row.get("tags") or ())
    return all(t in own for t in tags)
