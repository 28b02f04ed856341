"""Kong's generated CRUD endpoints (§5.2–5.4 of the Kong reference) for every entity.

A write computes the whole new config in memory (`tollway.controlplane.state`), validates
it as a declarative document would be (`tollway.config.declarative.validate`: references,
uniqueness, plugin configs) and hands it to `Supervisor.apply`: one revision per write, all
or nothing. Writes are serialised by a per-node lock so two concurrent writes cannot both
start from the same config and lose one another. In DB-less mode (`database = off`) every
write answers 405 code 12, as Kong does.

`created_at`/`updated_at` are not part of the normalised config (its hash is what the
workers and `config diff` compare); each revision stores them beside its entities
(`tollway.controlplane.store.times`), so they survive restarts and agree across nodes.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollway.config.declarative import validate
from tollway.config.entities import ENTITIES, ENTITY_NAMES
from tollway.config.errors import ConfigError
from tollway.config.model import Config
from tollway.config.schema import to_kong_fields
from tollway.controlplane import state
from tollway.controlplane.admin import bodies
from tollway.controlplane.admin.errors import (
    AdminError,
    KongJSON,
    coded,
    foreign_key_violation,
    foreign_keys_unresolved,
    not_found,
    operation_unsupported,
    primary_key_violation,
    referenced_by,
    schema_violation,
    unique_violation,
)
from tollway.controlplane.store import PreconditionFailed, StoreError

if TYPE_CHECKING:
    from tollway.node.supervisor import Supervisor

# URL collection name -> config entity name
COLLECTIONS: dict[str, str] = {
    "services": "services", "routes": "routes", "consumers": "consumers",
    "plugins": "plugins", "upstreams": "upstreams", "certificates": "certificates",
    "snis": "snis", "ca_certificates": "ca_certificates",
    "key-auths": "keyauth_credentials", "jwts": "jwt_secrets",
}
# 1-n: (parent collection, URL segment, child entity, child's foreign field)
NESTED: list[tuple[str, str, str, str]] = [
    ("services", "routes", "routes", "service"),
    ("services", "plugins", "plugins", "service"),
    ("routes", "plugins", "plugins", "route"),
    ("consumers", "plugins", "plugins", "consumer"),
    ("consumers", "key-auth", "keyauth_credentials", "consumer"),
    ("consumers", "jwt", "jwt_secrets", "consumer"),
    ("upstreams", "targets", "targets", "upstream"),
    ("certificates", "snis", "snis", "certificate"),
]
# n-1: (child collection, foreign field); GET/PUT/PATCH the referenced entity
PARENTS: list[tuple[str, str]] = [
    ("routes", "service"), ("plugins", "route"), ("plugins", "service"),
    ("plugins", "consumer"), ("snis", "certificate"), ("key-auths", "consumer"),
    ("jwts", "consumer"),
]
# entities Kong gives only `created_at`
CREATED_ONLY = {"keyauth_credentials", "jwt_secrets"}
TIMESTAMP_FIELDS = ("created_at", "updated_at")
DEFAULT_SIZE = 100
MAX_SIZE = 1000
WRITE_ATTEMPTS = 3  # recomputations when another node's write lands in between


class Precondition(Exception):
    """The client's If-Match did not match (→ 412)."""

    def __init__(self, exc: PreconditionFailed) -> None:
        super().__init__(str(exc))
        self.exc = exc


class DatabaseDown(Exception):
    """The database could not be reached (→ 503)."""

    def __init__(self, node: Supervisor, exc: StoreError) -> None:
        super().__init__(str(exc))
        self.node = node
        self.exc = exc


# -- per-node admin state -------------------------------------------------------------------


@dataclass
class NodeState:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


_STATES: weakref.WeakKeyDictionary[Any, NodeState] = weakref.WeakKeyDictionary()


def node_state(node: Supervisor) -> NodeState:
    found = _STATES.get(node)
    if found is None:
        found = NodeState()
        _STATES[node] = found
    return found


def author_of(request: Request) -> str | None:
    """The revision author: the admin token's name, else the `X-Tollway-Author` header."""
    token = request.scope.get("tollway.admin_token")
    return token if isinstance(token, str) else request.headers.get("x-tollway-author")


# -- building entities ----------------------------------------------------------------------


def present(node: Supervisor, entity: str, row: dict[str, Any]) -> dict[str, Any]:
    default = int(node.started_at)  # an entity the running config has no times for
    created, updated = node.times.get(str(row["id"]).lower(), (default, default))
    out = dict(row)
    out["created_at"] = created
    if entity not in CREATED_ONLY:
        out["updated_at"] = updated
    return out


def _resolve_names(entities: state.Entities, entity: str, data: dict[str, Any]) -> None:
    """Foreign keys given by endpoint key (`{"service": {"name": "x"}}`) → `{"id": ...}`;
    a bare string is not a record (Kong's Admin API takes only records)."""
    errors: dict[str, Any] = {}
    for fname, ref in ENTITIES[entity].foreign_fields.items():
        value = data.get(fname)
        if isinstance(value, str):
            errors[fname] = "expected a record"
        elif isinstance(value, dict) and "id" not in value and len(value) == 1:
            key_field, key = next(iter(value.items()))
            endpoint_key = ENTITIES[ref].endpoint_key
            row = None
            if endpoint_key is not None and key_field == endpoint_key and isinstance(key, str):
                row = next((r for r in entities.get(ref, [])
                            if r.get(endpoint_key) == key), None)
            if row is None:
                raise foreign_keys_unresolved(fname, ref, value)
            data[fname] = {"id": row["id"]}
    if errors:
        raise schema_violation(errors)


def build(entities: state.Entities, entity: str, data: dict[str, Any],
          ident: str | None) -> dict[str, Any]:
    """Validate one entity written through the Admin API; returns it normalised, with an
    id (`ident`, the one in the body, or a random uuid4 as Kong's Admin API assigns)."""
    data = {k: v for k, v in data.items() if k not in TIMESTAMP_FIELDS}
    _resolve_names(entities, entity, data)
    spec = ENTITIES[entity]
    for name in spec.auto:
        if data.get(name) is None:
            data[name] = uuid.uuid4().hex
    out, errors = spec.validate(data)
    if not errors and spec.link_check is not None:
        errors.update(spec.link_check(out))
    if errors:
        raise schema_violation(to_kong_fields(errors))
    if ident is not None:
        out["id"] = ident
    elif out.get("id") is None:
        out["id"] = str(uuid.uuid4())
    missing = state.missing_references(entities, entity, out)
    if missing is not None:
        fname, ref, ref_id = missing
        raise foreign_key_violation(fname, ref, {"id": ref_id})
    return out


def whole(new: state.Entities) -> Config:
    """The new entity lists as a config, validated like a declarative file."""
    try:
        return validate(Config.from_entities(new).to_declarative())
    except ConfigError as exc:
        messages = [f"{item.path}: {item.message}" for item in exc.errors]
        text = messages[0] if len(messages) == 1 else "; ".join(messages)
        raise coded(2, f"schema violation ({text})", {"@entity": messages}) from exc


def _merge(old: Any, new: Any) -> Any:
    """PATCH: records (dicts) merge field by field; anything else is replaced."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = dict(old)
        for k, v in new.items():
            out[k] = _merge(old.get(k), v)
        return out
    return new


# -- listing --------------------------------------------------------------------------------


def list_args(request: Request) -> tuple[int, str | None, tuple[list[str], bool] | None]:
    query = request.query_params
    size_s = query.get("size")
    size = DEFAULT_SIZE
    if size_s is not None:
        try:
            size = int(size_s)
        except ValueError:
            raise coded(9, "size must be a number") from None
        if not 1 <= size <= MAX_SIZE:
            raise coded(9, f"size must be an integer between 1 and {MAX_SIZE}")
    offset = query.get("offset")
    after = None
    if offset:
        try:
            after = state.decode_offset(offset)
        except state.BadOffset as exc:
            raise coded(7, f"'{offset}' is not a valid offset: {exc}") from None
    tags = None
    if query.get("tags") is not None:
        try:
            tags = state.parse_tags(query["tags"])
        except ValueError as exc:
            raise coded(11, f"invalid option (tags: {exc})", {"tags": str(exc)}) from None
    return size, after, tags


def paged(request: Request, rows: list[dict[str, Any]], base: str,
          render: Any, key: str = "id") -> KongJSON:
    size, after, tags = list_args(request)
    if tags is not None:
        rows = state.filter_tags(rows, *tags)
    chunk, offset = state.page(rows, size, after, key)
    body: dict[str, Any] = {"data": [render(r) for r in chunk]}
    if offset is not None:
        nxt = f"{base}?offset={quote(offset, safe='')}"
        if request.query_params.get("tags") is not None:
            nxt += "&tags=" + quote(request.query_params["tags"], safe="")
        if request.query_params.get("size") is not None:
            nxt += f"&size={size}"
        body["offset"] = offset
        body["next"] = nxt
    else:
        body["next"] = None
    return KongJSON(body)


# -- the endpoints --------------------------------------------------------------------------


class Crud:
    """The generic handlers, bound to one node."""

    def __init__(self, node: Supervisor) -> None:
        self.node = node

    def entities(self) -> state.Entities:
        return self.node.config.entities

    def present(self, entity: str) -> Any:
        return lambda row: present(self.node, entity, row)

    def parent(self, collection: str, key: str) -> dict[str, Any]:
        row = state.find(self.entities(), COLLECTIONS[collection], key)
        if row is None:
            raise not_found()
        return row

    def one(self, entity: str, key: str, scope: tuple[str, str] | None) -> dict[str, Any] | None:
        return state.find(self.entities(), entity, key, scope)

    async def commit(self, request: Request, entity: str, verb: str,
                     compute: Any) -> Any:
        """Run `compute(entities) -> (new entities, result)` under the write lock, validate
        and apply the new config; returns `result`."""
        if self.node.store is None:
            raise operation_unsupported(verb, entity)
        from tollway.node.supervisor import ApplyError

        nstate = node_state(self.node)
        given = request.headers.get("if-match")
        async with nstate.lock:
            for attempt in range(WRITE_ATTEMPTS):
                if self.node.sync is not None:
                    try:
                        # another node may have changed the config a moment ago: compute
                        # this change on the database's latest revision, not a stale one
                        await self.node.sync.catch_up()
                    except StoreError as exc:
                        self.node.database_down(exc)
                        raise DatabaseDown(self.node, exc) from exc
                base = self.node.config.hash
                try:
                    new, result, changed = compute(self.entities())
                except state.Referenced as exc:
                    raise referenced_by(exc.child, entity) from None
                except state.Conflict as exc:
                    if exc.kind == "pk":
                        raise primary_key_violation(exc.values["id"]) from None
                    raise unique_violation(exc.values) from None
                config = whole(new)
                try:
                    # without the client's If-Match, ours: the config this change was
                    # computed on must still be the latest when it is stored
                    await self.node.apply(config, author=author_of(request),
                                          message=request.query_params.get("message")
                                          or f"{verb} {entity}",
                                          if_match=given if given is not None else f'"{base}"',
                                          touched=changed)
                except PreconditionFailed as exc:
                    if given is not None or attempt == WRITE_ATTEMPTS - 1:
                        raise Precondition(exc) from exc
                    continue  # someone else wrote first: recompute on their revision
                except StoreError as exc:
                    raise DatabaseDown(self.node, exc) from exc
                except ApplyError as exc:
                    raise coded(2, f"schema violation ({exc})",
                                {"@entity": [str(exc)]}) from exc
                break
        return result

    # -- collection --------------------------------------------------------------------
    async def list(self, request: Request, entity: str, scope: tuple[str, str] | None,
                   base: str) -> Response:
        rows = self.entities().get(entity, [])
        if scope is not None:
            rows = [r for r in rows if state.fk_id(r.get(scope[0])) == scope[1].lower()]
        if entity == "consumers" and request.query_params.get("custom_id") is not None:
            rows = [r for r in rows if r.get("custom_id") == request.query_params["custom_id"]]
        return paged(request, rows, base, self.present(entity))

    async def create(self, request: Request, entity: str,
                     scope: tuple[str, str] | None) -> Response:
        if self.node.store is None:
            raise operation_unsupported("create", entity)
        data = await bodies.read(request, entity)
        if scope is not None:
            data[scope[0]] = {"id": scope[1]}

        def compute(entities: state.Entities) -> Any:
            row = build(entities, entity, data, None)
            state.check_conflicts(entities, entity, row)
            return state.upsert(entities, entity, row), row, {}

        row = await self.commit(request, entity, "create", compute)
        return KongJSON(present(self.node, entity, row), status_code=201)

    # -- one entity --------------------------------------------------------------------
    async def get(self, entity: str, key: str, scope: tuple[str, str] | None) -> Response:
        row = self.one(entity, key, scope)
        if row is None:
            raise not_found()
        return KongJSON(present(self.node, entity, row))

    async def put(self, request: Request, entity: str, key: str,
                  scope: tuple[str, str] | None) -> Response:
        if self.node.store is None:
            raise operation_unsupported("upsert", entity)
        data = await bodies.read(request, entity)
        spec = ENTITIES[entity]
        if scope is not None:
            data[scope[0]] = {"id": scope[1]}
        if not state.is_uuid(key) and spec.endpoint_key:
            data[spec.endpoint_key] = key

        def compute(entities: state.Entities) -> Any:
            existing = state.find(entities, entity, key, scope)
            if existing is None and scope is not None and state.find(entities, entity, key):
                raise not_found()  # it exists, under another parent
            ident = existing["id"] if existing else (key if state.is_uuid(key) else None)
            row = build(entities, entity, data, ident)
            state.check_conflicts(entities, entity, row, existing["id"] if existing else None)
            return state.upsert(entities, entity, row), row, {row["id"].lower(): entity}

        row = await self.commit(request, entity, "upsert", compute)
        return KongJSON(present(self.node, entity, row))

    async def patch(self, request: Request, entity: str, key: str,
                    scope: tuple[str, str] | None) -> Response:
        if self.node.store is None:
            raise operation_unsupported("update", entity)
        data = await bodies.read(request, entity)

        def compute(entities: state.Entities) -> Any:
            existing = state.find(entities, entity, key, scope)
            if existing is None:
                raise not_found()
            merged = _merge(existing, {k: v for k, v in data.items()
                                       if k not in TIMESTAMP_FIELDS})
            if "url" in data and entity == "services":
                # the url shorthand replaces protocol/host/port/path as a whole
                for f in ("protocol", "host", "port", "path"):
                    merged.pop(f, None)
            merged.pop("id", None)
            row = build(entities, entity, merged, existing["id"])
            state.check_conflicts(entities, entity, row, existing["id"])
            return state.upsert(entities, entity, row), row, {row["id"].lower(): entity}

        row = await self.commit(request, entity, "update", compute)
        return KongJSON(present(self.node, entity, row))

    async def delete(self, request: Request, entity: str, key: str,
                     scope: tuple[str, str] | None) -> Response:
        if self.node.store is None:
            raise operation_unsupported("delete", entity)
        existing = self.one(entity, key, scope)
        if existing is None:
            if scope is not None:
                raise not_found()
            return Response(status_code=204)
        ident = str(existing["id"])

        def compute(entities: state.Entities) -> Any:
            if state.find(entities, entity, ident) is None:
                return entities, None, {}  # deleted meanwhile
            return state.delete(entities, entity, ident), None, {}

        await self.commit(request, entity, "delete", compute)
        return Response(status_code=204)


def routes(node: Supervisor) -> list[Route]:
    crud = Crud(node)
    out: list[Route] = []

    def collection(entity: str, base: str) -> Any:
        async def handler(request: Request) -> Response:
            if request.method == "POST":
                return await crud.create(request, entity, None)
            return await crud.list(request, entity, None, base)
        return handler

    def item(entity: str) -> Any:
        async def handler(request: Request) -> Response:
            key = request.path_params["key"]
            return await _dispatch(crud, request, entity, key, None)
        return handler

    def nested_collection(parent: str, child: str, fk: str, segment: str) -> Any:
        async def handler(request: Request) -> Response:
            prow = crud.parent(parent, request.path_params["parent"])
            scope = (fk, str(prow["id"]))
            if request.method == "POST":
                return await crud.create(request, child, scope)
            base = f"/{parent}/{request.path_params['parent']}/{segment}"
            return await crud.list(request, child, scope, base)
        return handler

    def nested_item(parent: str, child: str, fk: str) -> Any:
        async def handler(request: Request) -> Response:
            prow = crud.parent(parent, request.path_params["parent"])
            return await _dispatch(crud, request, child, request.path_params["key"],
                                   (fk, str(prow["id"])))
        return handler

    def parent_of(collection_name: str, fk: str) -> Any:
        entity = COLLECTIONS[collection_name]
        ref = ENTITIES[entity].foreign_fields[fk]

        async def handler(request: Request) -> Response:
            if request.method == "DELETE":
                raise AdminError(405, "Method not allowed")
            row = crud.one(entity, request.path_params["key"], None)
            target = state.fk_id(row.get(fk)) if row is not None else None
            if target is None:
                raise not_found()
            return await _dispatch(crud, request, ref, target, None)
        return handler

    # fixed paths first: Starlette takes the first match
    out.append(Route("/upstreams/{parent}/targets/all",
                     _all_targets(crud), methods=["GET"]))
    for parent, segment, child, fk in NESTED:
        out.append(Route(f"/{parent}/{{parent}}/{segment}",
                         nested_collection(parent, child, fk, segment), methods=["GET", "POST"]))
        out.append(Route(f"/{parent}/{{parent}}/{segment}/{{key}}",
                         nested_item(parent, child, fk),
                         methods=["GET", "PUT", "PATCH", "DELETE"]))
    for collection_name, fk in PARENTS:
        out.append(Route(f"/{collection_name}/{{key}}/{fk}", parent_of(collection_name, fk),
                         methods=["GET", "PUT", "PATCH", "DELETE"]))
    for collection_name, entity in COLLECTIONS.items():
        out.append(Route(f"/{collection_name}", collection(entity, f"/{collection_name}"),
                         methods=["GET", "POST"]))
        out.append(Route(f"/{collection_name}/{{key}}", item(entity),
                         methods=["GET", "PUT", "PATCH", "DELETE"]))
    return out


async def _dispatch(crud: Crud, request: Request, entity: str, key: str,
                    scope: tuple[str, str] | None) -> Response:
    method = request.method
    if method in ("GET", "HEAD"):
        return await crud.get(entity, key, scope)
    if method == "PUT":
        return await crud.put(request, entity, key, scope)
    if method == "PATCH":
        return await crud.patch(request, entity, key, scope)
    return await crud.delete(request, entity, key, scope)


def _all_targets(crud: Crud) -> Any:
    async def handler(request: Request) -> Response:
        prow = crud.parent("upstreams", request.path_params["parent"])
        scope = ("upstream", str(prow["id"]))
        return await crud.list(request, "targets", scope,
                               f"/upstreams/{request.path_params['parent']}/targets/all")
    return handler


def tag_rows(entities: state.Entities) -> list[dict[str, Any]]:
    """Every (tag, entity) pair for `GET /tags`, keyed for paging by `entity_id` + tag."""
    out = []
    for name in ENTITY_NAMES:
        for row in entities.get(name, []):
            for tag in row.get("tags") or ():
                out.append({"entity_name": name, "entity_id": row["id"], "tag": tag,
                            "_key": f"{tag}\x00{row['id']}"})
    return out
