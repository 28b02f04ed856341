"""Signature verification per algorithm, and the jwt credentials of a snapshot with their
keys decoded once (HMAC secrets as bytes, public keys as `cryptography` objects)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

if TYPE_CHECKING:
    from tollway.plugins.base import BuildContext

log = logging.getLogger("tollway.plugins")


class KeyError_(Exception):
    """Kong raises a Lua assertion here (bad public key, ES signature of the wrong size):
    the request gets a 500."""


_HASH: dict[str, hashes.HashAlgorithm] = {"256": hashes.SHA256(), "384": hashes.SHA384(),
                                          "512": hashes.SHA512()}
_HMAC = {"256": "sha256", "384": "sha384", "512": "sha512"}
_ES_SIZE = {"256": 32, "384": 48, "512": 66}


def _hs(bits: str) -> Callable[[Any, bytes, bytes], bool]:
    name = _HMAC[bits]

    def verify(key: bytes, data: bytes, sig: bytes) -> bool:
        return hmac.compare_digest(hmac.digest(key, data, name), sig)
    return verify


def _rs(bits: str, pss: bool = False) -> Callable[[Any, bytes, bytes], bool]:
    h = _HASH[bits]

    def verify(key: Any, data: bytes, sig: bytes) -> bool:
        if not isinstance(key, rsa.RSAPublicKey):
            return False
        pad: padding.AsymmetricPadding = (
            padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size) if pss
            else padding.PKCS1v15())
        try:
            key.verify(sig, data, pad, h)
        except InvalidSignature:
            return False
        return True
    return verify


def _es(bits: str) -> Callable[[Any, bytes, bytes], bool]:
    h, size = _HASH[bits], _ES_SIZE[bits]

    def verify(key: Any, data: bytes, sig: bytes) -> bool:
        if len(sig) != 2 * size:
            raise KeyError_(f"Signature must be {2 * size} bytes.")
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        der = encode_dss_signature(int.from_bytes(sig[:size], "big"),
                                   int.from_bytes(sig[size:], "big"))
        try:
            key.verify(der, data, ec.ECDSA(h))
        except InvalidSignature:
            return False
        return True
    return verify


def _eddsa(key: Any, data: bytes, sig: bytes) -> bool:
    if not isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return False
    try:
        key.verify(sig, data)
    except InvalidSignature:
        return False
    return True


VERIFIERS: dict[str, Callable[[Any, bytes, bytes], bool]] = {
    "HS256": _hs("256"), "HS384": _hs("384"), "HS512": _hs("512"),
    "RS256": _rs("256"), "RS384": _rs("384"), "RS512": _rs("512"),
    "ES256": _es("256"), "ES384": _es("384"), "ES512": _es("512"),
    "PS256": _rs("256", True), "PS384": _rs("384", True), "PS512": _rs("512", True),
    "EdDSA": _eddsa,
}


def load_public_key(pem: str) -> Any:
    """A PEM public key (or the public half of a private key or certificate)."""
    data = pem.encode()
    try:
        return serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        pass
    try:
        return x509.load_pem_x509_certificate(data).public_key()
    except (ValueError, UnsupportedAlgorithm):
        pass
    try:
        return serialization.load_pem_private_key(data, None).public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


class Credential:
    """One jwt_secrets row, ready to verify with."""

    __slots__ = ("algorithm", "consumer", "entity", "hmac_b64", "hmac_raw", "is_hmac",
                 "jwks_uri", "key", "public_key")

    def __init__(self, entity: dict[str, Any], consumer: dict[str, Any] | None) -> None:
        from tollway.plugins.jwt.token import b64url_decode

        self.entity = entity
        self.consumer = consumer
        self.key: str = entity["key"]
        self.algorithm: str = entity.get("algorithm") or "HS256"
        self.is_hmac = self.algorithm.startswith("HS")
        self.jwks_uri: str | None = entity.get("jwks_uri")
        secret = entity.get("secret")
        self.hmac_raw: bytes | None = secret.encode() if self.is_hmac and secret else None
        # secret_is_base64 is a plugin setting: both forms are decoded once, here
        self.hmac_b64: bytes | None = (b64url_decode(secret) or None
                                       if self.is_hmac and secret else None)
        self.public_key: Any = None
        pem = entity.get("rsa_public_key")
        if not self.is_hmac and pem and not self.jwks_uri:
            self.public_key = load_public_key(pem)
            if self.public_key is None:
                log.error("jwt credential %s: rsa_public_key cannot be parsed", entity["id"])


class Credentials:
    """The snapshot's jwt credentials by `key` (shared by every jwt plugin instance)."""

    def __init__(self, ctx: BuildContext) -> None:
        from tollway.plugins import _auth

        by_id = _auth.consumers(ctx).by_id
        self.by_key: dict[str, Credential] = {}
        for row in ctx.entities("jwt_secrets"):
            consumer = by_id.get((row.get("consumer") or {}).get("id", ""))
            if row.get("key"):
                self.by_key[row["key"]] = Credential(row, consumer)
