"""key-auth (Kong §3.3): an API key from a header or the query string identifies a consumer.

Per request: one header lookup (and a query parse only when a query string exists) per key
name, then one dict lookup in the snapshot's key index. `key_in_body` is accepted but bodies
are not searched: the data plane streams request bodies and does not buffer them for
plugins (see docs).
"""

from __future__ import annotations

import logging
from typing import Any

from tollway.plugins import _auth
from tollway.plugins.base import BuildContext, Plugin
from tollway.plugins.key_auth.schema import config_schema

log = logging.getLogger("tollway.plugins")

NO_KEY = "No API key found in request"
DUPLICATE = "Duplicate API key found"
INVALID = "Unauthorized"  # 3.6+ (3.5: "Invalid authentication credentials")


class KeyIndex:
    """keyauth_credentials of a snapshot by key, each with its consumer."""

    def __init__(self, ctx: BuildContext) -> None:
        by_id = _auth.consumers(ctx).by_id
        self.by_key: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}
        for cred in ctx.entities("keyauth_credentials"):
            consumer = by_id.get((cred.get("consumer") or {}).get("id", ""))
            if cred.get("key"):
                self.by_key[cred["key"]] = (cred, consumer)


class KeyAuthPlugin(Plugin):
    name = "key-auth"
    priority = 1250
    version = "3.9.0"
    config_schema = config_schema
    no_consumer = True

    def __init__(self, config: dict[str, Any], entity: dict[str, Any],
                 ctx: BuildContext | None = None) -> None:
        super().__init__(config, entity, ctx)
        self.keys: KeyIndex = self.ctx.once("key-auth:keys", lambda: KeyIndex(self.ctx))
        self.anonymous = _auth.Anonymous(config.get("anonymous"), self.ctx)
        self.key_names: tuple[str, ...] = tuple(config["key_names"])
        self.in_header: bool = config["key_in_header"]
        self.in_query: bool = config["key_in_query"]
        self.hide: bool = config["hide_credentials"]
        self.skip_preflight = not config["run_on_preflight"]
        realm = config.get("realm")
        self.www_auth = {"WWW-Authenticate": f'Key realm="{realm}"' if realm else "Key"}
        if config["key_in_body"]:
            log.warning("key-auth %s: key_in_body is not supported yet (request bodies are "
                        "not buffered); keys are looked up in headers and the query only",
                        self.id)

    def access(self, req: Any) -> None:
        if self.skip_preflight and req.method == b"OPTIONS":
            return
        anonymous = self.anonymous
        if anonymous and req.credential is not None:
            return  # an earlier auth plugin succeeded: logical OR
        message = self.authenticate(req)
        if message is None:
            return
        if anonymous:
            anonymous.apply(req)
        else:
            req.error(401, message, self.www_auth)

    def authenticate(self, req: Any) -> str | None:
        """None on success (consumer attached), else the 401 message."""
        key: str | None = None
        query: dict[str, list[str | bool]] | None = None
        for name in self.key_names:
            values: list[Any] = []
            if self.in_header:
                values = _auth.header_values(req, name)
            if not values and self.in_query:
                if query is None:
                    query = _auth.parse_query(req.query_string)
                values = query.get(name, [])
            if len(values) > 1:
                return DUPLICATE
            if values and isinstance(values[0], str):
                key = values[0]
                if self.hide:
                    self.hide_key(req, name)
                break
        if not key:
            return NO_KEY
        found = self.keys.by_key.get(key)
        if found is None:
            return INVALID
        cred, consumer = found
        req.authenticate(consumer, cred, identifier=cred["id"])
        return None

    @staticmethod
    def hide_key(req: Any, name: str) -> None:
        qs = req.query_string
        if qs:
            kept = _auth.remove_query_arg(qs, name)
            if kept != qs:
                req.set_upstream_query(kept)
        req.clear_header(name)
        if "_" in name:
            req.clear_header(name.replace("_", "-"))
