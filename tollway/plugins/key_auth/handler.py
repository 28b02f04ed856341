"""key-auth (Kong §3.3): an API key from a header or the query string identifies a consumer.

Per request: one header lookup (and a query parse only when a query string exists) per key
name, then one dict lookup in the snapshot's key index. With `key_in_body` the route buffers
the request body (`wants_body`) and form-urlencoded, JSON and multipart bodies are searched
after the header and the query; `hide_credentials` then also removes the key from the body
(re-encoded as kong.service.request.set_body does).
"""

from __future__ import annotations

import logging
from typing import Any

from tollway.dataplane import body_args
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
        self.in_body: bool = config["key_in_body"]

    def wants_body(self) -> bool:
        return self.in_body

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
        body: Body | None = None
        for name in self.key_names:
            values: list[Any] = []
            if self.in_header:
                values = _auth.header_values(req, name)
            if not values and self.in_query:
                if query is None:
                    query = _auth.parse_query(req.query_string)
                values = query.get(name, [])
            if not values and self.in_body:
                if body is None:
                    body = Body(req)
                values = body.values(name)
            if len(values) > 1:
                return DUPLICATE
            if values and isinstance(values[0], str):
                key = values[0]
                if self.hide:
                    self.hide_key(req, name)
                    if self.in_body:
                        (body or Body(req)).remove(req, name)
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


class Body:
    """The request body as kong.request.get_body reads it (form, JSON or multipart); an
    unreadable or other body has no arguments."""

    __slots__ = ("args", "kind")

    def __init__(self, req: Any) -> None:
        self.kind = body_args.body_kind(req.req_ctype)
        data = req.body
        self.args: Any = None
        if self.kind is not None and data:
            self.args, _ = body_args.decode(self.kind, data, req.req_ctype)

    def values(self, name: str) -> list[Any]:
        """[] absent, [value] found, two items for a duplicate (a list or object value)."""
        args = self.args
        if isinstance(args, body_args.Multipart):
            return list(args.values(name))
        if not isinstance(args, dict):
            return []
        v = args.get(name)
        if v is None:
            return []
        if isinstance(v, (list, dict)):
            return [v, v]  # Kong: a table value is a duplicate key
        return [v]

    def remove(self, req: Any, name: str) -> None:
        """hide_credentials: the body without `name`, re-encoded (Kong re-encodes it even
        when the key came from elsewhere)."""
        args = self.args
        if isinstance(args, body_args.Multipart):
            args.delete(name)
        elif isinstance(args, dict):
            args.pop(name, None)
        else:
            return
        assert self.kind is not None
        req.set_body(body_args.encode(self.kind, args))
