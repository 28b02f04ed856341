"""request-size-limiting (Kong §3.8).

A numeric `Content-Length` is compared with the limit in access, before any byte of the body
is read or proxied (equal is allowed): over it → 413 `Request size limit exceeded` (417 when
the client sent `Expect: 100-continue`, so it never sends the body). Without a valid
Content-Length and with `require_content_length`, a request that is not chunked gets 411.

Chunked bodies without Content-Length: Kong reads the whole body and checks its length.
tollway counts them as they stream instead of buffering (`req.limit_body`): past the limit
the upstream request is cut and the client gets this plugin's 413 (417 with
`Expect: 100-continue`), unless the upstream already answered.
"""

from __future__ import annotations

from typing import Any

from tollway.plugins.base import BuildContext, Plugin
from tollway.plugins.request_size_limiting.schema import UNIT_BYTES, config_schema

TOO_LARGE = "Request size limit exceeded"
LENGTH_REQUIRED = "A valid Content-Length header is required"
L_TENC = b"transfer-encoding"


def _number(value: bytes) -> float | None:
    """Lua's tonumber on the header value (decimal, hex, exponent; surrounding spaces)."""
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        low = text.lower()
        if low.startswith((b"0x", b"-0x")):
            return int(text, 16)
        number = float(text)
    except ValueError:
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None


def _transfer_encoding(req: Any) -> bytes | None:
    for name, value in req.headers:
        if len(name) == 17 and name.lower() == L_TENC:
            return value
    return None


class RequestSizeLimitingPlugin(Plugin):
    name = "request-size-limiting"
    priority = 951
    version = "3.9.0"
    config_schema = config_schema

    def __init__(self, config: dict[str, Any], entity: dict[str, Any],
                 ctx: BuildContext | None = None) -> None:
        super().__init__(config, entity, ctx)
        size = config.get("allowed_payload_size")
        unit = UNIT_BYTES.get(config.get("size_unit") or "megabytes", 1 << 20)
        self.limit: float | None = size * unit if size is not None else None
        self.require_length = bool(config.get("require_content_length"))

    def access(self, req: Any) -> None:
        cl = req.content_length
        length = _number(cl) if cl else None
        if length is None:
            if self.require_length and _transfer_encoding(req) != b"chunked":
                req.error(411, LENGTH_REQUIRED)
            elif self.limit is not None and req.has_body:
                # counted while it streams (see above); equal is allowed
                req.limit_body(int(self.limit), 417 if req.expect_continue else 413,
                               TOO_LARGE)
            return
        limit = self.limit
        if limit is not None and length > limit:
            req.error(417 if req.expect_continue else 413, TOO_LARGE)
