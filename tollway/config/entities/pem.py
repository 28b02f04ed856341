"""Certificate and key checks of the certificates / ca_certificates entities (Kong's
``typedefs.certificate`` / ``typedefs.key`` validators and the entity checks of
``kong/db/schema/entities/certificates.lua`` and ``ca_certificates.lua``), with
``cryptography`` doing the parsing as OpenSSL does in Kong.

Field validators (``check_certificate``, ``check_key``) return ``None`` or the message;
entity-level functions (``cert_key_mismatch`` …) return ``None`` or the ``@entity`` message.
"""

from __future__ import annotations

import datetime
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)

__all__ = [
    "alt_cert_key_mismatch",
    "ca_certificate_problem",
    "cert_digest",
    "cert_key_mismatch",
    "check_certificate",
    "check_key",
    "same_key_type",
]

# ca_certificates.lua counts certificates with this pattern (CERT_TAG)
_CERT_TAG = re.compile(r"-----BEGIN CERTIFICATE-----")

CERT_MISMATCH = "certificate does not match key"
ALT_CERT_MISMATCH = "alternative certificate does not match key"
SAME_TYPE = (
    "certificate and alternative certificate need to have different type (e.g. RSA and "
    "ECDSA), the provided certificates were both of the same type"
)
ONE_CERT = "please submit only one certificate at a time"
EXPIRED = 'certificate expired, "Not After" time is in the past'
NOT_A_CA = 'certificate does not appear to be a CA because it is missing the "CA" basic constraint'


def _certificate(text: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(text.encode())


def _key(text: str) -> PrivateKeyTypes:
    return serialization.load_pem_private_key(text.encode(), password=None)


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_certificate(text: str) -> str | None:
    try:
        _certificate(text)
    except Exception as exc:
        return f"invalid certificate: {exc}"
    return None


def check_key(text: str) -> str | None:
    try:
        _key(text)
    except Exception as exc:
        return f"invalid key: {exc}"
    return None


def _matches(cert: str, key: str) -> bool:
    """Whether the certificate's public key is the key's public half (Kong compares the
    PEM of both). Unparsable input counts as matching: the field check reports it."""
    try:
        public = _key(key).public_key()
        return _spki(_certificate(cert).public_key()) == _spki(public)  # type: ignore[arg-type]
    except Exception:
        return True


def cert_key_mismatch(cert: str, key: str) -> str | None:
    return None if _matches(cert, key) else CERT_MISMATCH


def alt_cert_key_mismatch(cert_alt: str, key_alt: str) -> str | None:
    return None if _matches(cert_alt, key_alt) else ALT_CERT_MISMATCH


def same_key_type(cert: str, cert_alt: str) -> str | None:
    """RSA + RSA (or EC + EC …) for ``cert`` and ``cert_alt`` is refused."""
    try:
        first = type(_certificate(cert).public_key())
        second = type(_certificate(cert_alt).public_key())
    except Exception:
        return None
    return SAME_TYPE if first is second else None


def ca_certificate_problem(text: str, now: datetime.datetime | None = None) -> str | None:
    """The ca_certificates entity check: one certificate, not expired, a CA."""
    if len(_CERT_TAG.findall(text)) > 1:
        return ONE_CERT
    try:
        cert = _certificate(text)
    except Exception:
        return None  # reported on the field
    now = now or datetime.datetime.now(datetime.UTC)
    if cert.not_valid_after_utc < now:
        return EXPIRED
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return NOT_A_CA
    return None if constraints.ca else NOT_A_CA


def cert_digest(text: str) -> str | None:
    """sha256 hex of the certificate's DER bytes (Kong's ``cert_digest``,
    ``x509:digest("sha256")``); ``None`` when it does not parse."""
    try:
        return _certificate(text).fingerprint(hashes.SHA256()).hex()
    except Exception:
        return None
