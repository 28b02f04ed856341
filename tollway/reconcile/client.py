"""The Admin API client the CLI commands share: ``/config``, ``/status``, the revision
endpoints. Errors become ``AdminError`` with the node's message."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from tollway.config.declarative import validate
from tollway.config.loader import parse_text
from tollway.config.model import Config

DEFAULT_ADMIN_URL = "http://localhost:8001"


class AdminError(RuntimeError):
    def __init__(self, message: str, status: int | None = None,
                 body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass
class Running:
    config: Config
    hash: str
    revision: int | None


class AdminClient:
    def __init__(self, url: str | None = None, token: str | None = None,
                 headers: Iterable[str] = (), timeout: float = 30.0) -> None:
        self.url = (url or os.environ.get("TOLLWAY_ADMIN_URL") or DEFAULT_ADMIN_URL).rstrip("/")
        token = token or os.environ.get("TOLLWAY_ADMIN_TOKEN")
        hdrs: dict[str, str] = {"User-Agent": "tollway-cli"}
        if token:
            # Kong Enterprise's header, and the standard one
            hdrs["Kong-Admin-Token"] = token
            hdrs["Authorization"] = f"Bearer {token}"
        for item in headers:
            name, sep, value = item.partition(":")
            if not sep or not name.strip():
                raise ValueError(f"--header {item!r}: expected 'name:value'")
            hdrs[name.strip()] = value.strip()
        self.http = httpx.Client(base_url=self.url, headers=hdrs, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise AdminError(f"cannot reach the admin API at {self.url}: {exc}") from None

    def _json(self, method: str, path: str, ok: tuple[int, ...] = (200,),
              **kwargs: Any) -> Any:
        r = self.request(method, path, **kwargs)
        if r.status_code not in ok:
            raise _error(method, path, r)
        return r.json() if r.content else None

    def ping(self) -> dict[str, Any]:
        body = self._json("GET", "/")
        return body if isinstance(body, dict) else {}

    def running(self) -> Running:
        body = self._json("GET", "/config")
        document, _ = parse_text(body.get("config") or "", "config.yaml")
        config = Config.empty() if not document else validate(document)
        return Running(config, body.get("configuration_hash") or config.hash,
                       body.get("revision"))

    def post_config(self, document: dict[str, Any], *, message: str | None,
                    if_match: str | None) -> httpx.Response:
        params = {"message": message} if message else {}
        headers = {"If-Match": f'"{if_match}"'} if if_match else {}
        r = self.request("POST", "/config", json=document, params=params, headers=headers)
        if r.status_code == 412:
            raise AdminError("the running configuration changed while this command ran "
                             "(If-Match failed); nothing was applied, run it again", 412)
        if r.status_code not in (200, 201, 304):
            raise _error("POST", "/config", r)
        return r

    def revisions(self, size: int = 100) -> list[dict[str, Any]]:
        """The newest ``size`` revisions (the first page), newest first."""
        body = self._json("GET", "/config/revisions", params={"size": size})
        if isinstance(body, dict):
            rows = body.get("data") or body.get("revisions") or []
        else:
            rows = body or []
        return list(rows)

    def revision(self, number: int) -> dict[str, Any]:
        body = self._json("GET", f"/config/revisions/{number}")
        return body if isinstance(body, dict) else {}

    def rollback(self, number: int, message: str | None) -> dict[str, Any]:
        payload: dict[str, Any] = {"revision": number}
        if message:
            payload["message"] = message
        body = self._json("POST", "/config/rollback", ok=(200, 201), json=payload)
        return body if isinstance(body, dict) else {}


def _error(method: str, path: str, r: httpx.Response) -> AdminError:
    try:
        body = r.json()
    except ValueError:
        body = r.text
    message = body.get("message") if isinstance(body, dict) else None
    detail = message or (r.text[:300] if r.text else r.reason_phrase)
    if r.status_code == 404 and path.startswith("/config/"):
        detail = f"{detail} (this node has no {path.split('?')[0]} endpoint)"
    if r.status_code in (401, 403):
        detail = f"{detail} (check --admin-token / TOLLWAY_ADMIN_TOKEN)"
    return AdminError(f"{method} {path}: HTTP {r.status_code}: {detail}", r.status_code, body)
