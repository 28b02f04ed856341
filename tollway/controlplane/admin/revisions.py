"""Revision history endpoints (needs a database; DB-less nodes answer 400):

    GET  /config/revisions                 newest first, Kong's pagination (size, offset, next)
    GET  /config/revisions/{n}             one revision: its metadata and declarative document
    GET  /config/revisions/{a}/diff/{b}    what changes from a to b: decK's JSON diff report,
                                           each update with its field-level changes
    POST /config/rollback                  {"revision": n, "message": ...}: a new revision
                                           equal to n (If-Match honoured: 412 on conflict)

Responses about one revision carry `ETag: "<hash>"`; send it back as `If-Match` on a write to
make sure nobody changed the config in between.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tollway.controlplane.admin.entities import author_of, node_state
from tollway.controlplane.admin.errors import (
    AdminError,
    KongJSON,
    coded,
    database_unavailable,
    precondition_failed,
)
from tollway.controlplane.store import PreconditionFailed, Revision, StoreError, etag
from tollway.reconcile.diff import plan
from tollway.reconcile.output import MASK, Masker, render_json
from tollway.reconcile.state import SECRET_CONFIG_KEYS, SECRET_FIELDS
from tollway.reconcile.vault import is_reference

if TYPE_CHECKING:
    from tollway.controlplane.store import Store
    from tollway.node.supervisor import Supervisor

log = logging.getLogger("tollway.admin")

DEFAULT_SIZE, MAX_SIZE = 100, 1000  # Kong's page sizes
MAX_REVISION = 2**31 - 1  # the revision column is a 32-bit INTEGER on PostgreSQL
NO_DATABASE = ("revisions need a database: this node runs with database=off (DB-less) and "
               "keeps no history")


def routes(node: Supervisor) -> list[BaseRoute]:
    def store() -> Store:
        if node.store is None:
            raise AdminError(400, NO_DATABASE)
        return node.store

    async def load(n: int) -> Revision:
        # beyond the INTEGER column no revision can exist (and the drivers would overflow)
        rev = await asyncio.to_thread(store().get, n) if 1 <= n <= MAX_REVISION else None
        if rev is None:
            raise AdminError(404, f"revision {n} not found")
        return rev

    async def list_revisions(request: Request) -> Response:
        size = _size(request.query_params.get("size"))
        raw_offset = request.query_params.get("offset")
        before = _offset(raw_offset) if raw_offset is not None else None
        page = await asyncio.to_thread(store().page, size + 1, before)
        body: dict[str, Any] = {"data": [r.meta() for r in page[:size]], "next": None}
        if len(page) > size:
            token = _token(page[size - 1].number)
            body["offset"] = token
            extra = f"&size={size}" if "size" in request.query_params else ""
            body["next"] = f"/config/revisions?offset={token}{extra}"
        return KongJSON(body)

    async def get_revision(request: Request) -> Response:
        rev = await load(request.path_params["n"])
        body = {**rev.meta(), "config": rev.config.to_declarative()}
        return KongJSON(body, headers={"ETag": etag(rev.hash)})

    async def diff(request: Request) -> Response:
        a = await load(request.path_params["a"])
        b = await load(request.path_params["b"])
        report = revision_diff(a, b)
        return KongJSON(report)

    async def rollback(request: Request) -> Response:
        target, text = _rollback_body(await request.body())
        rev = await load(target)
        from tollway.node.supervisor import ApplyError

        nstate = node_state(node)  # the Admin API's write lock
        async with nstate.lock:
            before = node.revision
            try:
                number = await node.apply(rev.config, author=author_of(request),
                                          message=text or f"rollback to revision {target}",
                                          if_match=request.headers.get("if-match"))
            except PreconditionFailed as exc:
                return precondition_failed(exc)
            except ApplyError as exc:
                raise AdminError(400, f"revision {target} cannot be applied: {exc}") from exc
        assert number is not None
        current = await load(number)
        body = {**current.meta(), "rolled_back_to": target}
        # an identical config is not stored twice: rolling back to what already runs is a 200
        status = 201 if number != before else 200
        return KongJSON(body, status_code=status, headers={"ETag": etag(current.hash)})

    def guarded(handler: Any) -> Any:
        async def run(request: Request) -> Response:
            try:
                response: Response = await handler(request)
                return response
            except AdminError as exc:
                return exc.response()
            except StoreError as exc:
                node.database_down(exc)
                return database_unavailable(node, exc)
        return run

    return [
        Route("/config/revisions", guarded(list_revisions), methods=["GET"]),
        Route("/config/revisions/{n:int}", guarded(get_revision), methods=["GET"]),
        Route("/config/revisions/{a:int}/diff/{b:int}", guarded(diff), methods=["GET"]),
        Route("/config/rollback", guarded(rollback), methods=["POST"]),
    ]


def revision_diff(a: Revision, b: Revision) -> dict[str, Any]:
    """decK's `--json-output` report for a → b (tollway.reconcile: the same identities,
    masking and shape as `tollway config diff`), each update also listing its changed fields
    as `{"field": "dotted.path", "old": ..., "new": ...}`. Secrets (credential keys,
    password-like plugin fields) and vault references print as `[masked]`; a changed
    secret still shows as a changed field, masked on both sides."""
    p = plan(a.config, b.config)
    report = _mask_references(render_json(p, Masker()))
    updates = [e for e in p.events if e.op == "update"]
    for item, event in zip(report["changes"]["updating"], updates, strict=True):
        old = event.old.view if event.old is not None else {}
        secret = SECRET_FIELDS.get(event.entry.entity, ())
        item["fields"] = [_masked_change(c, secret)
                          for c in field_changes(old, event.entry.view)]
    return {"from": a.meta(), "to": b.meta(), **report}


def _masked_change(change: dict[str, Any], secret_fields: tuple[str, ...]) -> dict[str, Any]:
    path = change["field"]
    last = path.rsplit(".", 1)[-1]
    if path in secret_fields or last in SECRET_CONFIG_KEYS:
        return {"field": path, "old": None if change["old"] is None else MASK,
                "new": None if change["new"] is None else MASK}
    return _mask_references(change)


def _mask_references(value: Any) -> Any:
    """Every vault reference in `value` replaced by the mask (they name where secrets
    live, which the history does not need to show)."""
    if isinstance(value, dict):
        return {k: _mask_references(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_references(v) for v in value]
    return MASK if is_reference(value) else value


_ABSENT: Any = object()


def field_changes(old: dict[str, Any], new: dict[str, Any],
                  prefix: str = "") -> list[dict[str, Any]]:
    """The fields that differ, nested records walked (`config.minute`), lists compared whole;
    a field missing on one side is null there."""
    out: list[dict[str, Any]] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if a == b:
            continue
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(field_changes(a, b, path + "."))
            continue
        out.append({"field": path, "old": None if a is _ABSENT else a,
                    "new": None if b is _ABSENT else b})
    return out


# -- request parsing (Kong's pagination rules, §5.3 of the reference) ----------------------


def _size(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_SIZE
    try:
        size = int(raw)
    except ValueError:
        raise coded(9, "size must be a number") from None
    if not 1 <= size <= MAX_SIZE:
        raise coded(9, f"size must be an integer between 1 and {MAX_SIZE}")
    return size


def _token(revision: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([revision]).encode()).decode().rstrip("=")


def _offset(token: str) -> int:
    try:
        # validate=True: a token with characters outside the alphabet is refused, not
        # silently stripped
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise coded(7, f"'{token}' is not a valid offset: bad base64 encoding") from None
    try:
        value = json.loads(raw)
        if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], int)):
            raise ValueError
    except ValueError:
        raise coded(7, f"'{token}' is not a valid offset: bad json encoding") from None
    return int(value[0])


def _rollback_body(raw: bytes) -> tuple[int, str | None]:
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise AdminError(400, "Cannot parse JSON body") from None
    if not isinstance(body, dict):
        raise coded(2, "schema violation (expected a JSON object)",
                    {"@entity": ["expected a JSON object"]})
    fields: dict[str, str] = {}
    target = body.get("revision")
    if target is None:
        fields["revision"] = "required field missing"
    elif isinstance(target, bool) or not isinstance(target, int) or target < 1:
        fields["revision"] = "expected a positive integer"
    text = body.get("message")
    if text is not None and not isinstance(text, str):
        fields["message"] = "expected a string"
    for key in body:
        if key not in ("revision", "message"):
            fields[key] = "unknown field"
    if fields:
        parts = [f"{k}: {v}" for k, v in sorted(fields.items())]
        head = (f"schema violation ({parts[0]})" if len(parts) == 1
                else f"{len(parts)} schema violations ({'; '.join(parts)})")
        raise coded(2, head, fields)
    assert isinstance(target, int)
    return target, text
