"""header-stamp: stamps a header on the request sent upstream and/or on the response.

* `upstream_header` (default `X-Stamp`): sent upstream with `value`; when the client already
  sent it, `on_exists` says what happens: `override` (replace), `append` (add a value) or
  `keep` (leave the client's value);
* `downstream_header`: added to the response, with the value that went upstream;
* `include_worker`: the value ends with `; worker=<pid>` (which worker served the request);
* `require_header`: a request without this header is answered 400 before the upstream.
"""

from __future__ import annotations

import os
from typing import Any

from tollway.plugins.base import BuildContext, HeaderList, Plugin
from tollway_header_stamp.schema import config_schema

NAME = "header-stamp"


class HeaderStamp(Plugin):
    name = NAME
    priority = 850  # after authentication (1250-1450) and rate-limiting (910)
    version = "0.1.0"
    config_schema = config_schema

    def __new__(cls, config: dict[str, Any], entity: dict[str, Any],
                ctx: BuildContext | None = None) -> HeaderStamp:
        # The chain calls only the phases a class defines: a config without a downstream
        # header gets the class without a response phase (no HeaderList per response).
        if cls is HeaderStamp and config.get("downstream_header"):
            cls = DownstreamHeaderStamp
        return super().__new__(cls)

    def __init__(self, config: dict[str, Any], entity: dict[str, Any],
                 ctx: BuildContext | None = None) -> None:
        super().__init__(config, entity, ctx)
        # Once per config snapshot: everything a request needs, already encoded.
        value = config["value"]
        if config["include_worker"]:
            value = f"{value}; worker={os.getpid()}"
        self.stamp = value.encode("latin-1")
        self.upstream: str | None = config["upstream_header"]
        self.upstream_b = self.upstream.encode("latin-1") if self.upstream else b""
        self.downstream_b = (config["downstream_header"] or "").encode("latin-1")
        self.on_exists = config["on_exists"]
        self.required: str | None = config["require_header"]
        self.reject_body = {"message": f"header '{self.required}' is required"}
        # Per-worker state that outlives config changes, keyed by this plugin's id.
        self.stats: dict[str, int] = self.ctx.worker.setdefault(
            f"{NAME}:{self.id}", {"stamped": 0})

    def access(self, req: Any) -> None:
        if self.required is not None and req.get_header(self.required) is None:
            req.exit(400, self.reject_body)  # the remaining access handlers are skipped
            return
        sent = self.stamp
        if self.upstream is not None:
            incoming = req.get_header(self.upstream)
            if incoming is None or self.on_exists == "override":
                req.set_header(self.upstream_b, sent)
            elif self.on_exists == "append":
                req.add_header(self.upstream_b, sent)
            else:  # keep: what goes upstream (and is echoed) is the client's value
                sent = incoming.encode("latin-1")
        req.ctx[NAME] = sent  # per-request state, read back in the response phase

    def log(self, req: Any) -> None:
        if NAME in req.ctx:
            self.stats["stamped"] += 1


class DownstreamHeaderStamp(HeaderStamp):
    """header-stamp with a `downstream_header`: the response carries the stamp too."""

    def response(self, req: Any, headers: HeaderList) -> None:
        # access did not run when an earlier plugin answered: fall back to the stamp
        headers.set(self.downstream_b, req.ctx.get(NAME, self.stamp))
