"""Light PEM checks for certificates and keys.

``cryptography`` is used when importable (real parsing); otherwise we only check the PEM
structure (armour lines + base64 body), which catches pasting mistakes without a new
dependency. Key/certificate matching and CA constraints need real parsing and are only
checked in the first case.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import re
from typing import Any


def _optional(module: str) -> Any:
    # cryptography is optional: never a hard dependency of tollway
    try:
        return importlib.import_module(module)
    except ImportError:  # pragma: no cover - depends on the environment
        return None


_x509: Any = _optional("cryptography.x509")
_serialization: Any = _optional("cryptography.hazmat.primitives.serialization")

_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.S)


def pem_blocks(text: str) -> list[tuple[str, bytes]]:
    """(label, DER bytes) for every well-formed PEM block; raises ValueError on bad base64."""
    blocks: list[tuple[str, bytes]] = []
    for m in _BLOCK.finditer(text):
        body = "".join(m.group(2).split())
        # encrypted legacy keys carry "Proc-Type:" headers before the base64 body
        if ":" in body:
            body = m.group(2).strip().split("\n\n")[-1]
            body = "".join(body.split())
        try:
            der = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"bad base64 data in PEM block '{m.group(1)}'") from exc
        blocks.append((m.group(1), der))
    return blocks


def check_certificate(text: str) -> str | None:
    if _x509 is not None:
        try:
            _x509.load_pem_x509_certificate(text.encode())
        except Exception as exc:
            return f"invalid certificate: {exc}"
        return None
    try:
        blocks = pem_blocks(text)
    except ValueError as exc:
        return f"invalid certificate: {exc}"
    if not any(label in ("CERTIFICATE", "TRUSTED CERTIFICATE") for label, _ in blocks):
        return "invalid certificate: no PEM certificate found"
    return None


def check_key(text: str) -> str | None:
    if _serialization is not None:
        try:
            _serialization.load_pem_private_key(text.encode(), password=None)
        except Exception as exc:
            return f"invalid key: {exc}"
        return None
    try:
        blocks = pem_blocks(text)
    except ValueError as exc:
        return f"invalid key: {exc}"
    if not any(label.endswith("PRIVATE KEY") for label, _ in blocks):
        return "invalid key: no PEM private key found"
    return None


def check_ca_certificate(text: str) -> str | None:
    err = check_certificate(text)
    if err:
        return err
    try:
        certs = [b for b in pem_blocks(text) if b[0] == "CERTIFICATE"]
    except ValueError as exc:  # already reported above in practice
        return f"invalid certificate: {exc}"
    if len(certs) > 1:
        return "please submit only one certificate at a time"
    if _x509 is not None:
        return _check_ca_constraints(text)
    return None


def _check_ca_constraints(text: str) -> str | None:
    import datetime

    cert: Any = _x509.load_pem_x509_certificate(text.encode())
    not_after = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after.replace(
        tzinfo=datetime.UTC
    )
    if not_after < datetime.datetime.now(datetime.UTC):
        return 'certificate expired, "Not After" time is in the past'
    try:
        constraints = cert.extensions.get_extension_for_class(_x509.BasicConstraints).value
    except _x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        return (
            'certificate does not appear to be a CA because it is missing the "CA" basic constraint'
        )
    return None


def cert_digest(text: str) -> str | None:
    """sha256 hex of the first certificate's DER bytes (Kong's ``cert_digest``)."""
    try:
        for label, der in pem_blocks(text):
            if label == "CERTIFICATE":
                return hashlib.sha256(der).hexdigest()
    except ValueError:
        return None
    return None
