"""Admin API tokens (DECISIONS.md #6; Kong OSS has none, §5.8 of the Kong reference).

Settings:

* `admin_token` — one token, named `admin`, full access;
* `admin_tokens_file` — a file of named tokens, one per line, stored hashed:
  `<name> <role> sha256:<hex of sha256(token)>`, role `admin` or `read-only`, `#` comments.

When any token is configured every admin request must send one, as
`Authorization: Bearer <token>` or Kong Enterprise's `Kong-Admin-Token: <token>`:
no or an unknown token → 401, a read-only token on a write → 403. The presented token is
hashed and compared with every stored hash in constant time (`hmac.compare_digest`, no early
exit), so timing says nothing about which token or how much of it matched. The token's name
is the author of the revision a write creates.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tollway.settings import Settings

ROLES = ("admin", "read-only")
READ_METHODS = {"GET", "HEAD", "OPTIONS"}
# POSTs that change nothing: a read-only token may validate
READ_ONLY_POSTS = ("/schemas/",)

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]


class TokenError(ValueError):
    """The token settings are unusable; the message names the setting and line."""


@dataclass(frozen=True)
class Token:
    name: str
    role: str
    digest: bytes  # sha256 of the token


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def parse_tokens_file(text: str, source: str) -> list[Token]:
    tokens: list[Token] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        where = f"admin_tokens_file {source}:{lineno}"
        if len(parts) != 3:
            raise TokenError(f"{where}: expected '<name> <role> sha256:<hex>'")
        name, role, hashed = parts
        if role not in ROLES:
            raise TokenError(f"{where}: role must be one of: {', '.join(ROLES)}; got {role!r}")
        algo, _, hexdigest = hashed.partition(":")
        try:
            value = bytes.fromhex(hexdigest)
        except ValueError:
            value = b""
        if algo != "sha256" or len(value) != 32:
            raise TokenError(f"{where}: expected sha256:<64 hex digits>")
        if any(t.name == name for t in tokens):
            raise TokenError(f"{where}: token name {name!r} already used")
        tokens.append(Token(name, role, value))
    return tokens


def load_tokens(settings: Settings) -> list[Token]:
    """Every configured token (empty: the Admin API is open)."""
    tokens: list[Token] = []
    single = settings.values.get("admin_token", "").strip()
    if single:
        tokens.append(Token("admin", "admin", digest(single)))
    path = settings.values.get("admin_tokens_file", "").strip()
    if path:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise TokenError(f"admin_tokens_file: cannot read {path}: {exc.strerror}") from exc
        for token in parse_tokens_file(text, path):
            if any(t.name == token.name for t in tokens):
                raise TokenError(f"admin_tokens_file {path}: token name {token.name!r} "
                                 "already used")
            tokens.append(token)
    return tokens


def identify(tokens: list[Token], presented: str) -> Token | None:
    wanted = digest(presented)
    found: Token | None = None
    for token in tokens:  # no early exit: every stored hash is compared
        if hmac.compare_digest(token.digest, wanted) and found is None:
            found = token
    return found


def presented_token(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    kong = headers.get("kong-admin-token", "").strip()
    return kong or None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_bind(settings: Settings) -> str | None:
    """Why the admin listener must not start (a non-loopback address and no token, without
    `admin_listen_allow_insecure`), or None."""
    allow = settings.values.get("admin_listen_allow_insecure", "off").strip().lower()
    if allow in ("on", "true", "yes", "1"):
        return None
    if settings.values.get("admin_token", "").strip() or \
            settings.values.get("admin_tokens_file", "").strip():
        return None
    exposed = [str(listen) for listen in settings.admin_listen if not is_loopback(listen.host)]
    if not exposed:
        return None
    return (f"admin_listen {', '.join(exposed)} is not a loopback address and no admin token "
            "is configured: anyone who can reach it could change the gateway. Set "
            "admin_token or admin_tokens_file, or admin_listen_allow_insecure = on")


def _reply(status: int, text: str, extra: list[tuple[bytes, bytes]]) -> tuple[dict[str, Any],
                                                                               dict[str, Any]]:
    body = json.dumps({"message": text}).encode()
    headers = [(b"content-type", b"application/json; charset=utf-8"),
               (b"content-length", str(len(body)).encode()), *extra]
    return ({"type": "http.response.start", "status": status, "headers": headers},
            {"type": "http.response.body", "body": body})


class TokenMiddleware:
    """ASGI middleware: the token check in front of every admin route. The accepted token's
    name is put in `scope["tollway.admin_token"]`."""

    def __init__(self, app: ASGIApp, tokens: list[Token]) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http" or not self.tokens:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        presented = presented_token(headers)
        token = identify(self.tokens, presented) if presented else None
        if token is None:
            for message in _reply(401, "Unauthorized",
                                  [(b"www-authenticate", b'Bearer realm="tollway-admin"')]):
                await send(message)
            return
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        writes = method not in READ_METHODS and not (
            method == "POST" and path.startswith(READ_ONLY_POSTS) and path.endswith("/validate"))
        if token.role == "read-only" and writes:
            for message in _reply(403, f"Forbidden: admin token '{token.name}' is read-only",
                                  []):
                await send(message)
            return
        scope["tollway.admin_token"] = token.name
        await self.app(scope, receive, send)
