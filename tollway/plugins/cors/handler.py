"""cors (Kong §3.6): answers CORS preflights in access and adds CORS headers to every other
response, proxied or produced by the gateway (401 of an auth plugin, 404, 429 ...).

Everything that does not depend on the request is computed once per config: header names
and values as bytes, the joined method/header lists, the compiled origin regexes. At request
time the Origin's verdict is one dict lookup (`OriginPolicy.resolve` caches it).
"""

from __future__ import annotations

from typing import Any

from tollway.config.schema import fmt_value
from tollway.plugins.base import (
    BuildContext,
    HeaderBlock,
    HeaderNames,
    Plugin,
    ResponseItem,
)
from tollway.plugins.cors.origins import OriginPolicy
from tollway.plugins.cors.schema import METHODS, config_schema

NAME = "cors"
ACAO = b"Access-Control-Allow-Origin"
ACAC = b"Access-Control-Allow-Credentials"
ACAH = b"Access-Control-Allow-Headers"
ACAM = b"Access-Control-Allow-Methods"
ACMA = b"Access-Control-Max-Age"
ACEH = b"Access-Control-Expose-Headers"
ACAPN = b"Access-Control-Allow-Private-Network"
VARY = b"Vary"
ORIGIN = b"Origin"
VARY_LINE = VARY + b": " + ORIGIN + b"\r\n"  # added beside the upstream's Vary
TRUE = b"true"
STAR = b"*"
L_ORIGIN = b"origin"
L_ACRM = b"access-control-request-method"
L_ACRH = b"access-control-request-headers"
L_ACRPN = b"access-control-request-private-network"
MISSING = b"\0missing"  # not a header value: a header value cannot contain NUL
RESOLVED_MAX = 4096


class CorsPlugin(Plugin):
    name = NAME
    priority = 2000
    version = "3.9.0"
    config_schema = config_schema
    no_consumer = True

    def __init__(self, config: dict[str, Any], entity: dict[str, Any],
                 ctx: BuildContext | None = None) -> None:
        super().__init__(config, entity, ctx)
        self.policy = OriginPolicy(config.get("origins"))
        self.fixed = self.policy.fixed.encode("latin-1") if self.policy.fixed else None
        self.credentials = bool(config.get("credentials"))
        exposed = config.get("exposed_headers")
        self.exposed = ",".join(exposed).encode("latin-1") if exposed else None
        headers = config.get("headers")
        self.allow_headers = ",".join(headers).encode("latin-1") if headers else None
        methods = config.get("methods")
        self.methods = ",".join(methods if methods is not None else METHODS).encode()
        max_age = config.get("max_age")
        self.max_age = fmt_value(max_age).encode() if max_age is not None else None
        self.private_network = bool(config.get("private_network"))
        self.preflight_continue = bool(config.get("preflight_continue"))
        self.origin_absent = config.get("allow_origin_absent", True) is not False
        # Origin header value -> Access-Control-Allow-Origin value (None: no match), as
        # bytes; the policy's own cache works on str
        self.resolved: dict[bytes, bytes | None] = {}
        # Origin header value (None: absent) -> the response headers, built once
        self.by_origin: dict[bytes | None, list[ResponseItem]] = {}

    def _allow_origin(self, origin: bytes | None) -> tuple[bool, bool, bytes | None]:
        """Kong's configure_origin: (allow_all, add Vary: Origin, ACAO value or None to
        remove it)."""
        policy = self.policy
        if policy.allow_all:
            return True, False, STAR
        if self.fixed is not None:
            return False, True, self.fixed
        if origin is not None:
            if policy.star:
                return True, True, STAR
            acao = self.resolved.get(origin, MISSING)
            if acao is MISSING:
                found = policy.resolve(origin.decode("latin-1"))
                acao = found.encode("latin-1") if found is not None else None
                if len(self.resolved) >= RESOLVED_MAX:
                    self.resolved.clear()
                self.resolved[origin] = acao
            if acao is not None:
                return False, True, acao
        return False, True, None

    # -- preflight --------------------------------------------------------------------------
    def access(self, req: Any) -> None:
        if req.method != b"OPTIONS":
            return
        origin = acrm = acrh = acrpn = None
        for name, value in req.headers:
            lname = name.lower()
            if lname == L_ORIGIN:
                origin = value if origin is None else origin
            elif lname == L_ACRM:
                acrm = value if acrm is None else acrm
            elif lname == L_ACRH:
                acrh = value if acrh is None else acrh
            elif lname == L_ACRPN:
                acrpn = value if acrpn is None else acrpn
        if origin is None or acrm is None:
            return  # not a preflight: an ordinary request
        # Either the upstream answers the preflight, or this plugin does: no CORS headers
        # are added to the response in both cases.
        req.ctx[NAME] = True
        if self.preflight_continue:
            return
        set_header = req.set_response_header
        allow_all, vary, acao = self._allow_origin(origin)
        if vary:
            set_header(VARY, ORIGIN)
        if acao is not None:
            set_header(ACAO, acao)
        if self.credentials:
            if not allow_all:
                set_header(ACAC, TRUE)
            else:
                set_header(VARY, ORIGIN)
                set_header(ACAO, origin)
                set_header(ACAC, TRUE)
        if self.allow_headers is not None:
            set_header(ACAH, self.allow_headers)
        elif acrh is not None:
            set_header(ACAH, acrh)
        set_header(ACAM, self.methods)
        if self.max_age is not None:
            set_header(ACMA, self.max_age)
        if self.private_network and acrpn == TRUE:
            set_header(ACAPN, TRUE)
        req.exit(200)

    # -- every other response ---------------------------------------------------------------
    def response_headers(self, req: Any) -> None:
        if req.method == b"OPTIONS" and req.ctx.get(NAME):
            return
        origin = req.raw_header(L_ORIGIN)
        if origin is None and not self.origin_absent:
            return
        entries = self.by_origin.get(origin)
        if entries is None:
            entries = self._entries(origin)
            if len(self.by_origin) >= RESOLVED_MAX:
                self.by_origin.clear()
            self.by_origin[origin] = entries
        extra = req.resp_extra  # req.set_response_headers(entries), without its call
        if extra is None:
            req.resp_extra = list(entries)
        else:
            extra += entries

    def _entries(self, origin: bytes | None) -> list[ResponseItem]:
        """The response headers for requests with this Origin, as one block. Kong: Vary is
        appended (add_header), the Access-Control-* headers replace the upstream's
        (set_header) and ACAO is removed when no origin matched."""
        allow_all, vary, acao = self._allow_origin(origin)
        lines = [VARY_LINE] if vary else []
        credentials = False
        if self.credentials:
            if not allow_all:
                credentials = True
            elif origin is not None:
                lines.append(VARY_LINE)
                acao = origin
                credentials = True
        # ACAO (removed when None), ACAC, ACEH replace the upstream's
        names = {ACAO.lower()}
        if acao is not None:
            lines.append(ACAO + b": " + acao + b"\r\n")
        if credentials:
            names.add(ACAC.lower())
            lines.append(ACAC + b": " + TRUE + b"\r\n")
        if self.exposed is not None:
            names.add(ACEH.lower())
            lines.append(ACEH + b": " + self.exposed + b"\r\n")
        added = (VARY.lower(),) if VARY_LINE in lines else ()
        return [HeaderBlock(HeaderNames(names, added), b"".join(lines))]
