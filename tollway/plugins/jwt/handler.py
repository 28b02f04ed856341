"""jwt (Kong §3.2): a signed JWT names its credential through `key_claim_name`; the
credential's secret or public key verifies it, and its consumer is attached.

Built once per snapshot: credentials by key with secrets decoded and public keys loaded
(`keys.Credentials`), the anonymous consumer, the WWW-Authenticate values. Per request: token
extraction, one parse, one dict lookup, one verification — or none, when the same token was
verified recently (`verified`, bounded; claims are still checked against the clock every
time). Credentials with a `jwks_uri` (beyond Kong) verify with keys from that set: the access
phase awaits only when the set must be fetched (`jwks.JwksCache`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Coroutine
from typing import Any

from tollway.dataplane.plugin_api import Overlay, consumer_overlay
from tollway.plugins import _auth
from tollway.plugins.base import BuildContext, Plugin
from tollway.plugins.jwt import jwks
from tollway.plugins.jwt.keys import VERIFIERS, Credential, Credentials, KeyError_
from tollway.plugins.jwt.schema import config_schema
from tollway.plugins.jwt.token import Token, parse

log = logging.getLogger("tollway.plugins")

BEARER = re.compile(r"\s*[Bb]earer\s+(.+)")
VERIFIED_MAX = 4096

# A failed check: (body, invalid_token). `invalid_token` picks the WWW-Authenticate value.
Failure = tuple[dict[str, Any], bool]
UNAUTHORIZED: Failure = ({"message": "Unauthorized"}, False)


def _fail(message: str) -> Failure:
    return {"message": message}, True


class ServerError(Exception):
    pass


class JwtPlugin(Plugin):
    name = "jwt"
    priority = 1450
    version = "3.9.0"
    config_schema = config_schema
    no_consumer = True

    def __init__(self, config: dict[str, Any], entity: dict[str, Any],
                 ctx: BuildContext | None = None) -> None:
        super().__init__(config, entity, ctx)
        self.credentials: Credentials = self.ctx.once("jwt:credentials",
                                                      lambda: Credentials(self.ctx))
        self.jwks = jwks.cache_for(self.ctx.worker)
        self.anonymous = _auth.Anonymous(config.get("anonymous"), self.ctx)
        self.uri_param_names: tuple[str, ...] = tuple(config["uri_param_names"] or ())
        self.cookie_names: tuple[str, ...] = tuple(config["cookie_names"] or ())
        self.header_names: tuple[str, ...] = tuple(config["header_names"] or ())
        self.claim: str = config["key_claim_name"]
        self.base64: bool = config["secret_is_base64"]
        self.claims_to_verify: tuple[str, ...] = tuple(config["claims_to_verify"] or ())
        self.maximum_expiration: float = config["maximum_expiration"] or 0
        self.skip_preflight = not config["run_on_preflight"]
        realm = config.get("realm")
        base = f'Bearer realm="{realm}"' if realm else "Bearer"
        self.www_base = {"WWW-Authenticate": base}
        self.www_invalid = {"WWW-Authenticate": (f'{base}, error="invalid_token"' if realm
                                                 else 'Bearer error="invalid_token"')}
        # token → (credential, parsed token), for tokens whose signature checked out
        self.verified: dict[str, tuple[Credential, Token]] = {}
        self.has_anonymous = bool(self.anonymous)
        # The usual configuration reads tokens from one header only (no cookies; query
        # arguments only when the URL has a query string): its raw value is found without
        # the request's header map, and a value seen before maps straight to its verified
        # token (`by_header`, bounded as `verified`).
        self.fast_header: tuple[bytes, ...] | None = None
        if not self.cookie_names and len(self.header_names) == 1:
            name = self.header_names[0]
            normalised = name.replace("_", "-")
            if name.isascii():
                # as _auth.header_values: the `-` spelling first, then the name as given
                self.fast_header = tuple(dict.fromkeys(
                    (normalised.lower().encode(), name.lower().encode())))
        # token header -> (credential, token, its consumer's upstream headers or None, the
        # token's text)
        self.by_header: dict[bytes, tuple[Credential, Token, Overlay | None, str]] = {}
        # access's shortcut applies: one token header, no claims to check
        self.plain = (self.fast_header is not None and len(self.fast_header) == 1
                      and not self.claims_to_verify and not self.maximum_expiration > 0)

    # -- phases -------------------------------------------------------------------------
    def access(self, req: Any) -> Coroutine[Any, Any, None] | None:
        if self.skip_preflight and req.method == b"OPTIONS":
            return None
        if self.has_anonymous and req.credential is not None:
            return None  # an earlier auth plugin succeeded: logical OR
        if self.plain and (not self.uri_param_names or req.url.find(b"?") < 0):
            # The usual request: a token header verified before, with its consumer: no
            # claims to check, so nothing of the token is looked at again (what authenticate
            # and accept would do, without their calls and checks).
            header = req.raw_header(self.fast_header[0])  # type: ignore[index]
            hit = self.by_header.get(header) if header.__class__ is bytes else None
            if hit is not None:
                overlay = hit[2]
                if overlay is not None:
                    # req.authenticate_with(cred.consumer, cred.entity, overlay), inline
                    cred = hit[0]
                    req.consumer = cred.consumer
                    req.credential = cred.entity
                    current = req.req_overlay
                    if current is None:
                        req.req_overlay = overlay.copy()
                    else:
                        current.update(overlay)
                    req.ctx["authenticated_jwt_token"] = hit[3]
                    return None
        try:
            outcome = self.authenticate(req)
        except ServerError as exc:
            req.error(500, str(exc) or None)
            return None
        if outcome is None:  # accepted (checked first: isinstance with an ABC is slow)
            return None
        if isinstance(outcome, Coroutine):
            return self._finish(req, outcome)
        if outcome is not None:
            self.reject(req, outcome)
        return None

    async def _finish(self, req: Any, pending: Coroutine[Any, Any, Failure | None]) -> None:
        try:
            outcome = await pending
        except ServerError as exc:
            req.error(500, str(exc) or None)
            return
        if outcome is not None:
            self.reject(req, outcome)

    def reject(self, req: Any, failure: Failure) -> None:
        if self.anonymous:
            self.anonymous.apply(req)
            return
        body, invalid = failure
        req.exit(401, body, self.www_invalid if invalid else self.www_base)

    # -- authentication -----------------------------------------------------------------
    def retrieve(self, req: Any) -> dict[Any, None]:
        """Every token the request carries, as an ordered set (Kong's token_set)."""
        found: dict[Any, None] = {}
        if self.uri_param_names:
            qs = req.query_string
            if qs:
                args = _auth.parse_query(qs)
                for name in self.uri_param_names:
                    for value in args.get(name, ()):
                        if value != "":
                            found[value] = None
        for name in self.cookie_names:
            cookie = _auth.cookie(req, name)
            if cookie:
                found[cookie] = None
        for name in self.header_names:
            values = _auth.header_values(req, name)
            if values:
                m = BEARER.search(values[0])
                if m and m.group(1):
                    found[m.group(1)] = None
        return found

    def header_value(self, req: Any) -> bytes | None:
        """The first value of the one token header (fast path only)."""
        names = self.fast_header
        assert names is not None
        for lname in names:
            value = req.raw_header(lname)
            if value is not None:
                return bytes(value)
        return None

    def authenticate(self, req: Any) -> Failure | Coroutine[Any, Any, Failure | None] | None:
        header: bytes | None = None
        # (a URL without `?` has no query string: no need to build one to know; find, not
        # `in`: bytes.__contains__ first tries its operand as an int and builds a TypeError)
        if self.fast_header is not None and not (
                self.uri_param_names and req.url.find(b"?") >= 0 and req.query_string):
            names = self.fast_header
            header = req.raw_header(names[0])  # the usual one name, without a call more
            if header is None and len(names) > 1:
                header = self.header_value(req)
            if header is None:
                return UNAUTHORIZED
            if header.__class__ is not bytes:
                header = bytes(header)
            seen = self.by_header.get(header)
            if seen is not None:
                return self.accept(req, seen[0], seen[1])
            m = BEARER.search(header.decode("latin-1"))
            if not (m and m.group(1)):
                return UNAUTHORIZED
            raw: Any = m.group(1)
        else:
            tokens = self.retrieve(req)
            if not tokens:
                return UNAUTHORIZED
            if len(tokens) > 1:
                return _fail("Multiple tokens provided")
            raw = next(iter(tokens))
            if not isinstance(raw, str):
                return _fail("Unrecognizable token")  # a bare `?jwt` query argument
        hit = self.verified.get(raw)
        if hit is not None:
            if header is not None:
                self.remember_header(header, hit)
            return self.accept(req, hit[0], hit[1])
        token = parse(raw)
        if isinstance(token, str):
            return _fail("Bad token; " + token)
        claim = self.claim
        key = token.claim_dict().get(claim)
        if key is None or key is False:
            key = token.header.get(claim)
        if key is None or key is False:
            return _fail(f"No mandatory '{claim}' in claims")
        if key == "":
            return _fail(f"Invalid '{claim}' in claims")
        cred = self.credentials.by_key.get(key) if isinstance(key, str) else None
        if cred is None:
            return _fail(f"No credentials found for given '{claim}'")
        if token.alg != cred.algorithm:
            return _fail("Invalid algorithm")
        if cred.jwks_uri:
            return self.verify_jwks(req, cred, token)
        if cred.is_hmac:
            secret = cred.hmac_b64 if self.base64 else cred.hmac_raw
            if secret is None:
                return _fail("Invalid key/secret")
            ok = VERIFIERS[token.alg](secret, token.signing_input, token.signature)
        else:
            if cred.public_key is None:
                if not cred.entity.get("rsa_public_key"):
                    return _fail("Invalid key/secret")
                raise ServerError()  # Kong: assertion "Consumer Public Key is Invalid"
            ok = self.verify_with(cred.public_key, token)
        if not ok:
            return _fail("Invalid signature")
        self.remember(raw, cred, token)
        if header is not None:
            self.remember_header(header, (cred, token))
        return self.accept(req, cred, token)

    @staticmethod
    def verify_with(key: Any, token: Token) -> bool:
        try:
            return VERIFIERS[token.alg](key, token.signing_input, token.signature)
        except KeyError_ as exc:
            log.info("jwt: %s", exc)
            raise ServerError() from None

    def verify_jwks(self, req: Any, cred: Credential, token: Token
                    ) -> Failure | Coroutine[Any, Any, Failure | None] | None:
        assert cred.jwks_uri is not None
        kid = token.header.get("kid")
        keys, fetch = self.jwks.lookup(cred.jwks_uri, kid, token.alg)
        if fetch:
            return self._verify_jwks_after_fetch(req, cred, token, kid)
        return self.check_jwks_keys(req, cred, token, keys)

    async def _verify_jwks_after_fetch(self, req: Any, cred: Credential, token: Token,
                                       kid: Any) -> Failure | None:
        assert cred.jwks_uri is not None
        await self.jwks.refresh(cred.jwks_uri)
        ks = self.jwks.sets.get(cred.jwks_uri)
        keys = ks.find(kid, token.alg) if ks is not None else []
        return self.check_jwks_keys(req, cred, token, keys)

    def check_jwks_keys(self, req: Any, cred: Credential, token: Token,
                        keys: list[jwks.Jwk]) -> Failure | None:
        if not keys:
            return _fail("Invalid key/secret")
        if not any(self.verify_with(k.key, token) for k in keys[:8]):
            return _fail("Invalid signature")
        return self.accept(req, cred, token)

    def remember(self, raw: str, cred: Credential, token: Token) -> None:
        verified = self.verified
        if len(verified) >= VERIFIED_MAX:
            del verified[next(iter(verified))]
        verified[raw] = (cred, token)

    def remember_header(self, header: bytes, entry: tuple[Credential, Token]) -> None:
        by_header = self.by_header
        if len(by_header) >= VERIFIED_MAX:
            del by_header[next(iter(by_header))]
        cred = entry[0]
        overlay = (consumer_overlay(cred.consumer, cred.key, False)
                   if cred.consumer is not None else None)
        by_header[header] = (cred, entry[1], overlay, entry[1].raw)

    def accept(self, req: Any, cred: Credential, token: Token) -> Failure | None:
        """The signature is good: registered claims, maximum expiration, consumer."""
        if self.claims_to_verify or self.maximum_expiration > 0:
            claims = token.claim_dict()
            now = int(time.time())
            errors: dict[str, str] = {}
            for name in self.claims_to_verify:
                value = claims.get(name)
                if not isinstance(value, int | float) or isinstance(value, bool):
                    errors[name] = "must be a number"
                elif name == "exp" and value <= now:
                    errors[name] = "token expired"
                elif name == "nbf" and value > now:
                    errors[name] = "token not valid yet"
            if errors:
                return errors, True
            if self.maximum_expiration > 0:
                exp = claims.get("exp")
                if (not isinstance(exp, int | float) or isinstance(exp, bool)
                        or exp - now > self.maximum_expiration):
                    return {"exp": "exceeds maximum allowed expiration"}, True
        consumer = cred.consumer
        if consumer is None:
            return _fail(f"Could not find consumer for '{self.claim}={cred.key}'")
        req.authenticate(consumer, cred.entity, identifier=cred.key)
        req.ctx["authenticated_jwt_token"] = token.raw
        return None
