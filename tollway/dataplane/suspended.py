"""`req.suspend()`'s object: an access phase waiting for a callback rather than an await."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from tollway.dataplane.plugin_api import PluginAPI


class Suspended:
    """What an access method returns to make the request wait for a callback (the redis
    rate-limiting policy's batched reply): the callback then calls `resume()`, and the
    next plugins and the upstream call run inside that call, or `fail(exc)` (a 500, as an
    exception in access). Cheaper than returning a future: no callback scheduled on the
    event loop, no coroutine, no task. Settling twice, or before the runner saw the
    object, is handled: the first outcome counts."""

    __slots__ = ("at", "outcome", "req")

    def __init__(self, req: PluginAPI) -> None:
        self.req = req
        self.at = 0  # 0: not yet seen by the runner; > 0: the plugin to resume from
        self.outcome: BaseException | bool | None = None  # settled (True: resumed)

    def awaited(self, at: int) -> None:
        outcome = self.outcome
        if outcome is None:
            self.at = at
        elif outcome is True:
            self.req._resume_access(at)
        else:
            self.req._access_failed(at, cast(BaseException, outcome))

    def resume(self) -> None:
        if self.outcome is None:
            self.outcome = True
            if self.at:
                self.req._resume_access(self.at)

    def fail(self, exc: BaseException) -> None:
        if self.outcome is None:
            self.outcome = exc
            if self.at:
                self.req._access_failed(self.at, exc)
