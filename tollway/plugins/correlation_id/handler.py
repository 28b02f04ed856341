"""correlation-id (Kong §3.4): a request id sent upstream in `header_name`, and echoed to the
client with `echo_downstream`.

A non-empty incoming value is kept unchanged; otherwise the configured generator makes one.
With `echo_downstream` the response carries the same value; when access never ran (a request
answered before it, e.g. a 404 of a global plugin) the request's own value or a fresh id is
used, as Kong's header_filter does.
"""

from __future__ import annotations

from typing import Any

from tollway.plugins.base import BuildContext, HeaderNames, Plugin
from tollway.plugins.correlation_id import generators
from tollway.plugins.correlation_id.generators import next_uuid_or_raise
from tollway.plugins.correlation_id.schema import config_schema

NAME = "correlation-id"


class CorrelationIdPlugin(Plugin):
    name = NAME
    priority = 100001  # Kong 3.9+ (1 before)
    version = "3.9.0"
    config_schema = config_schema

    def __new__(cls, config: dict[str, Any], entity: dict[str, Any],
                ctx: BuildContext | None = None) -> CorrelationIdPlugin:
        # Only a config that echoes has a response phase: without it the chain of a route
        # need not run a response phase for every response.
        if cls is CorrelationIdPlugin and config.get("echo_downstream"):
            cls = EchoingCorrelationId
        return super().__new__(cls)

    def __init__(self, config: dict[str, Any], entity: dict[str, Any],
                 ctx: BuildContext | None = None) -> None:
        super().__init__(config, entity, ctx)
        header = config.get("header_name")
        self.header = header.encode("latin-1") if isinstance(header, str) else None
        self.lheader = self.header.lower() if self.header is not None else b""
        self.line_start = self.header + b": " if self.header is not None else b""
        self.names = HeaderNames((self.lheader,))
        self.echo = bool(config.get("echo_downstream"))
        self.generate = generators.build(config.get("generator") or "uuid#counter",
                                         self.ctx.worker)
        self.uuid = config.get("generator") == "uuid"

    def _value(self, req: Any) -> bytes:
        value = req.raw_header(self.lheader)
        if not value:
            value = self.generate(req)
        return value

    def access(self, req: Any) -> None:
        header = self.header
        if header is None:
            return
        value = req.raw_header(self.lheader)
        if not value:
            if self.uuid:  # the default generator, inline: two Python calls fewer
                try:
                    value = next_uuid_or_raise()
                except IndexError:
                    value = generators.uuid4_bytes()
            else:
                value = self.generate(req)
            # req.set_header(header, value) without its call and conversions
            entry = (header, (value,), self.line_start + value + b"\r\n")
            overlay = req.req_overlay
            if overlay is None:
                req.req_overlay = {self.lheader: entry}
            else:
                overlay[self.lheader] = entry
        # for the echo, and for log plugins (Kong's serializer field `correlation_id`)
        req.ctx[NAME] = value



class EchoingCorrelationId(CorrelationIdPlugin):
    """correlation-id with `echo_downstream`: the response carries the id too."""

    def response_headers(self, req: Any) -> None:
        header = self.header
        if header is None:
            return
        value = req.ctx.get(NAME)
        if value is None:
            value = self._value(req)
        # set_response_header(header, value) as a plain-tuple block (base.Block): its names
        # and line start made once, no call
        block = (self.names, self.line_start + value + b"\r\n")
        extra = req.resp_extra
        if extra is None:
            req.resp_extra = [block]
        else:
            extra.append(block)
