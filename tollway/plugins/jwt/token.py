"""Parsing a compact JWS the way Kong's jwt_parser does, with its error texts.

`parse(token)` returns a `Token` or the reason Kong reports after "Bad token; ":
"invalid JSON", "invalid alg", "invalid claims" or "invalid signature".
"""

from __future__ import annotations

import binascii
import json
from base64 import b64decode
from typing import Any

from tollway.plugins.jwt.keys import VERIFIERS

_URLSAFE = bytes.maketrans(b"-_", b"+/")


def b64url_decode(value: str) -> bytes | None:
    """Kong's base64_decode: `-`/`_` or `+`/`/`, padding optional, None when invalid
    (nginx's decoder stops at the first `=` and rejects a length of 4n+1)."""
    data = value.split("=", 1)[0].encode("latin-1", "replace")
    rem = len(data) % 4
    if rem == 1:
        return None
    if rem:
        data += b"=" * (4 - rem)
    try:
        return b64decode(data.translate(_URLSAFE), validate=True)
    except (binascii.Error, ValueError):
        return None


class Token:
    __slots__ = ("claims", "header", "raw", "signature", "signing_input")

    def __init__(self, raw: str, header: dict[str, Any], claims: Any, signature: bytes,
                 signing_input: bytes) -> None:
        self.raw = raw
        self.header = header
        self.claims = claims
        self.signature = signature
        self.signing_input = signing_input

    @property
    def alg(self) -> str:
        alg: str = self.header["alg"]
        return alg

    def claim_dict(self) -> dict[str, Any]:
        return self.claims if isinstance(self.claims, dict) else {}


def _json(segment: str) -> tuple[bool, Any]:
    raw = b64url_decode(segment)
    if raw is None:
        return False, None
    try:
        return True, json.loads(raw)
    except ValueError:
        return False, None


def parse(token: str) -> Token | str:
    # Kong tokenizes into at most 3 parts: any further dot stays in the signature part.
    parts = token.split(".", 2)
    if len(parts) != 3:
        return "invalid JSON"
    header_64, claims_64, signature_64 = parts
    ok, header = _json(header_64)
    if not ok:
        return "invalid JSON"
    ok, claims = _json(claims_64)
    if not ok:
        return "invalid JSON"
    if not isinstance(header, dict):
        return "invalid alg"
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in VERIFIERS:
        return "invalid alg"
    if claims is None:
        return "invalid claims"
    signature = b64url_decode(signature_64)
    if signature is None:
        return "invalid signature"
    signing_input = f"{header_64}.{claims_64}".encode("latin-1", "replace")
    return Token(token, header, claims, signature, signing_input)
