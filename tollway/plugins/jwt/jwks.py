"""JSON Web Key Sets for jwt credentials that name a `jwks_uri` (beyond Kong).

One `JwksCache` per worker (in `BuildContext.worker`, so config changes keep it). A key set
is fetched when first needed, again when it is older than `MAX_AGE`, and again when a token
names a `kid` it does not hold — at most once per `MIN_REFRESH_INTERVAL` per uri, so unknown
kids cannot make the gateway hammer the issuer. Concurrent requests share one fetch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, HMACAlgorithm, OKPAlgorithm, RSAAlgorithm

log = logging.getLogger("tollway.plugins")

MIN_REFRESH_INTERVAL = 10.0
MAX_AGE = 300.0
FETCH_TIMEOUT = 5.0
MAX_BYTES = 1 << 20

_KTY = {"HS": "oct", "RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_CRV = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_LOADERS: dict[str, Any] = {"RSA": RSAAlgorithm, "EC": ECAlgorithm, "OKP": OKPAlgorithm,
                            "oct": HMACAlgorithm}
_PRIVATE = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey,
            ed448.Ed448PrivateKey)


class Jwk:
    __slots__ = ("alg", "crv", "key", "kid", "kty")

    def __init__(self, data: dict[str, Any], key: Any) -> None:
        self.kid = data.get("kid")
        self.kty = data.get("kty")
        self.alg = data.get("alg")
        self.crv = data.get("crv")
        self.key = key

    def fits(self, alg: str) -> bool:
        if self.alg is not None and self.alg != alg:
            return False
        if self.kty != _KTY.get(alg[:2]):
            return False
        return alg not in _CRV or self.crv == _CRV[alg]


def parse_jwks(body: bytes) -> list[Jwk]:
    doc = json.loads(body)
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        raise ValueError("no 'keys' array")
    out = []
    for item in keys:
        if not isinstance(item, dict) or item.get("use", "sig") != "sig":
            continue
        loader = _LOADERS.get(item.get("kty", ""))
        if loader is None:
            continue
        try:
            key = loader.from_jwk(item)
        except Exception:  # a malformed key is skipped, the others still count
            log.warning("jwks: skipping an unusable key (kid %r)", item.get("kid"))
            continue
        if isinstance(key, _PRIVATE):
            key = key.public_key()
        out.append(Jwk(item, key))
    return out


class KeySet:
    __slots__ = ("fetched_at", "inflight", "keys", "last_attempt")

    def __init__(self) -> None:
        self.keys: list[Jwk] = []
        self.fetched_at = -1e18
        self.last_attempt = -1e18
        self.inflight: asyncio.Task[None] | None = None

    def find(self, kid: Any, alg: str) -> list[Jwk]:
        if kid is None:
            return [k for k in self.keys if k.fits(alg)]
        return [k for k in self.keys if k.kid == kid and k.fits(alg)]


class JwksCache:
    def __init__(self) -> None:
        self.sets: dict[str, KeySet] = {}
        self.client: Any = None
        self.fetches = 0  # for tests and metrics

    def lookup(self, uri: str, kid: Any, alg: str) -> tuple[list[Jwk], bool]:
        """(keys usable now, whether a fetch should be awaited first)."""
        ks = self.sets.get(uri)
        now = time.monotonic()
        if ks is None:
            return [], True
        keys = ks.find(kid, alg)
        may_fetch = ks.inflight is not None or now - ks.last_attempt >= MIN_REFRESH_INTERVAL
        stale = now - ks.fetched_at >= MAX_AGE
        if (not keys or stale) and may_fetch:
            return keys, True
        return keys, False

    async def refresh(self, uri: str) -> None:
        ks = self.sets.setdefault(uri, KeySet())
        task = ks.inflight
        if task is None:
            if time.monotonic() - ks.last_attempt < MIN_REFRESH_INTERVAL:
                return
            ks.last_attempt = time.monotonic()
            task = ks.inflight = asyncio.get_running_loop().create_task(self._fetch(uri, ks))
        await asyncio.shield(task)

    async def _fetch(self, uri: str, ks: KeySet) -> None:
        import httpx

        if self.client is None:
            self.client = httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False)
        self.fetches += 1
        try:
            resp = await self.client.get(uri, headers={"Accept": "application/json"})
            if resp.status_code != 200:
                raise ValueError(f"status {resp.status_code}")
            if len(resp.content) > MAX_BYTES:
                raise ValueError("key set too large")
            keys = parse_jwks(resp.content)
        except Exception as exc:
            log.warning("jwks: fetching %s failed: %s", uri, exc)
            return
        finally:
            ks.inflight = None
        ks.keys = keys
        ks.fetched_at = time.monotonic()


def cache_for(worker: dict[str, Any]) -> JwksCache:
    cache = worker.get("jwt:jwks")
    if cache is None:
        cache = worker["jwt:jwks"] = JwksCache()
    assert isinstance(cache, JwksCache)
    return cache
