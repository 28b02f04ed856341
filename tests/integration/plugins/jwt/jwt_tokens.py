"""Token and key material for the jwt tests."""

from __future__ import annotations

import base64
import json
import time
import warnings
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: Any, claims: Any, signature: bytes = b"sig") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()),
                     b64(signature)])


def sign(claims: dict[str, Any], key: Any, alg: str = "HS256",
         headers: dict[str, Any] | None = None) -> str:
    with warnings.catch_warnings():  # short test secrets are fine here
        warnings.simplefilter("ignore")
        return pyjwt.encode(claims, key, algorithm=alg, headers=headers)


def rsa_pair() -> tuple[Any, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, pem


def ec_pair(curve: ec.EllipticCurve) -> tuple[Any, str]:
    private = ec.generate_private_key(curve)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, pem


def now() -> int:
    return int(time.time())
