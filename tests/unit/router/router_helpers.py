"""Dict fixtures shaped like the normalised config entities the router consumes."""

from __future__ import annotations

import uuid
from typing import Any

SERVICE_ID = "00000000-0000-4000-8000-00000000aaaa"


def rid(n: int) -> str:
    """Deterministic route UUIDs whose ordering follows ``n``."""
    return f"00000000-0000-4000-8000-{n:012x}"


def service(path: str | None = None, **kw: Any) -> dict[str, Any]:
    svc: dict[str, Any] = {
        "id": SERVICE_ID,
        "name": "svc",
        "protocol": "http",
        "host": "upstream.test",
        "port": 80,
        "path": path,
        "enabled": True,
        "retries": 5,
        "connect_timeout": 60000,
        "write_timeout": 60000,
        "read_timeout": 60000,
    }
    svc.update(kw)
    return svc


def route(name: str, n: int | None = None, **kw: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "id": rid(n) if n is not None else str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
        "name": name,
        "protocols": ["http", "https"],
        "methods": None,
        "hosts": None,
        "paths": None,
        "headers": None,
        "snis": None,
        "sources": None,
        "destinations": None,
        "regex_priority": 0,
        "strip_path": True,
        "preserve_host": False,
        "https_redirect_status_code": 426,
        "path_handling": "v0",
        "request_buffering": True,
        "response_buffering": True,
        "tags": None,
        "service": {"id": SERVICE_ID},
    }
    r.update(kw)
    return r
