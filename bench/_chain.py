"""The seed's plugin chain for the ``seed-chain`` scenarios (issue #3), and the issue's ratios.

The chain is the one the seed's ``examples/gateway.yaml`` puts on user-service (jwt,
rate-limiting, correlation-id, prometheus) plus the seed's global cors plugin, on a single
route ``/`` (``strip_path: false``). Rate-limiting limits are high enough never to be reached;
the ``redis`` variant talks to Redis on 127.0.0.1:6379.

Standard library only (PyJWT is imported when a token is made), so the unit test can load
this file on its own.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any

# The consumer's HS256 credential: ``key`` is the token's ``iss`` (the seed's jwt plugin has
# ``key_claim_name: iss``). 40 bytes: PyJWT warns below 32 bytes for HS256.
JWT_ISS = "bench-issuer"
JWT_SECRET = "bench-secret-0123456789abcdef0123456789"
ORIGIN = "http://localhost:3000"  # one of the seed's cors origins
REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
# Never reached: wrk on one core does not do 10M requests in a second (or 600M in a minute).
LIMIT_SECOND = 10_000_000
LIMIT_MINUTE = 600_000_000
POLICIES = ("local", "redis")


def make_token(secret: str = JWT_SECRET, iss: str = JWT_ISS) -> str:
    """An HS256 JWT with ``iss`` (and ``sub``), no expiry. Needs PyJWT (in the venv)."""
    import jwt  # PyJWT

    token = jwt.encode({"iss": iss, "sub": "bench"}, secret, algorithm="HS256")
    return token if isinstance(token, str) else token.decode()


def request_headers(token: str) -> dict[str, str]:
    """What wrk (and the smoke check) send in the chain scenarios."""
    return {"Authorization": f"Bearer {token}", "Origin": ORIGIN}


def tollway_chain_yaml(
    upstream_port: int,
    policy: str,
    redis_host: str = REDIS_HOST,
    redis_port: int = REDIS_PORT,
) -> str:
    """Kong 3.0 declarative config: one service, route ``/``, the seed chain, one consumer."""
    if policy not in POLICIES:
        raise ValueError(f"rate-limiting policy {policy!r}: want one of {POLICIES}")
    redis = (
        [
            f"          redis_host: {redis_host}",
            f"          redis_port: {redis_port}",
        ]
        if policy == "redis"
        else []
    )
    lines = [
        '_format_version: "3.0"',
        "services:",
        "  - name: bench",
        f"    url: http://127.0.0.1:{upstream_port}",
        "    routes:",
        "      - name: r",
        '        paths: ["/"]',
        "        strip_path: false",
        "    plugins:",
        "      - name: rate-limiting",
        "        config:",
        f"          second: {LIMIT_SECOND}",
        f"          minute: {LIMIT_MINUTE}",
        f"          policy: {policy}",
        *redis,
        "          fault_tolerant: true",
        "      - name: jwt",
        "        config:",
        "          key_claim_name: iss",
        "          secret_is_base64: false",
        "      - name: correlation-id",
        "        config:",
        "          header_name: X-Request-ID",
        "          generator: uuid",
        "          echo_downstream: true",
        "      - name: prometheus",
        "        config:",
        "          per_consumer: true",
        "plugins:",
        "  - name: cors",
        "    config:",
        f'      origins: ["{ORIGIN}", "https://app.example.com"]',
        '      methods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"]',
        '      headers: ["Accept", "Authorization", "Content-Type"]',
        '      exposed_headers: ["X-Request-ID"]',
        "      credentials: true",
        "      max_age: 3600",
        "consumers:",
        "  - username: bench",
        "    jwt_secrets:",
        f"      - key: {JWT_ISS}",
        "        algorithm: HS256",
        f'        secret: "{JWT_SECRET}"',
    ]
    return "\n".join(lines) + "\n"


def check_chain_response(status: int, headers: Message | Mapping[str, str]) -> str | None:
    """``None`` when a proxied response shows the chain ran, else what is missing.

    ``headers``: the response's ``http.client.HTTPMessage`` (case-insensitive ``get``).
    """
    if status != 200:
        return f"HTTP {status}, want 200"
    missing = [h for h in ("X-Request-ID", "X-RateLimit-Limit-Second") if not headers.get(h)]
    if missing:
        return f"no {', '.join(missing)} response header (plugin chain did not run)"
    if headers.get("Access-Control-Allow-Origin") != ORIGIN:
        got = headers.get("Access-Control-Allow-Origin")
        return f"Access-Control-Allow-Origin {got!r}, want {ORIGIN!r} (cors did not run)"
    return None


def redis_unavailable_reason(
    host: str = REDIS_HOST, port: int = REDIS_PORT, timeout_s: float = 2.0
) -> str | None:
    """``None`` when Redis answers ``PING`` with ``+PONG`` on host:port, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        return f"Redis on {host}:{port} does not answer ({exc})"
    if not reply.startswith(b"+PONG"):
        text = reply.decode(errors="replace").strip()
        return f"Redis on {host}:{port} answered PING with {text!r}"
    return None


# --------------------------------------------------------------------------- issue #3 ratios


@dataclass(frozen=True)
class Target:
    """``num`` / ``den`` >= ``minimum``; a side is (scenario, system)."""

    label: str
    num: tuple[str, str]
    den: tuple[str, str]
    minimum: float


ISSUE_TARGETS: tuple[Target, ...] = (
    Target(
        "seed-chain vs nginx bare proxy",
        ("seed-chain", "tollway"),
        ("bare", "nginx-proxy"),
        0.35,
    ),
    Target(
        "seed-chain vs tollway bare proxy",
        ("seed-chain", "tollway"),
        ("bare", "tollway"),
        0.7,
    ),
    Target(
        "redis policy vs local policy",
        ("seed-chain-redis", "tollway"),
        ("seed-chain", "tollway"),
        0.6,
    ),
)


Results = Mapping[str, Mapping[str, Mapping[str, Any]]]  # results[scenario][system] -> cell


def _rps(results: Results, side: tuple[str, str]) -> float | None:
    cell = results.get(side[0], {}).get(side[1], {})
    if cell.get("status") != "ok":
        return None
    rps = float(cell["wrk"]["requests_per_sec"])
    return rps if rps > 0 else None


def issue_ratios(results: Results) -> list[dict[str, Any]]:
    """Issue #3's ratios from a run's ``results[scenario][system]`` cells.

    A ratio whose cells are missing (scenario or system not run, or not ``ok``) has
    ``ratio``/``met`` ``None`` and says which cell it lacks.
    """
    out: list[dict[str, Any]] = []
    for t in ISSUE_TARGETS:
        num, den = _rps(results, t.num), _rps(results, t.den)
        row: dict[str, Any] = {
            "label": t.label,
            "numerator": f"{t.num[1]} {t.num[0]}",
            "denominator": f"{t.den[1]} {t.den[0]}",
            "minimum": t.minimum,
            "ratio": None,
            "met": None,
        }
        if num is None or den is None:
            lacking = [f"{s[1]} {s[0]}" for s, v in ((t.num, num), (t.den, den)) if v is None]
            row["missing"] = ", ".join(lacking)
        else:
            row["ratio"] = num / den
            row["met"] = num / den >= t.minimum
        out.append(row)
    return out
