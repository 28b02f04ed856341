"""What the store raises. Callers translate these at their boundary: the Admin API into HTTP
answers (412, 404, 500), `tollway start` and `tollway migrations` into a message and exit 1."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used (unreachable, bad settings, a failed statement); the
    message says which database and why."""


class NotMigrated(StoreError):
    """The schema is missing or behind; the message names the command to run."""


class PreconditionFailed(StoreError):
    """`If-Match` named a config that is no longer the current one (HTTP 412): someone else
    changed the config in between, and this write would silently overwrite their change."""

    def __init__(self, if_match: str, current_hash: str, current_revision: int | None) -> None:
        self.if_match = if_match
        self.current_hash = current_hash
        self.current_revision = current_revision
        where = (f"revision {current_revision}" if current_revision is not None
                 else "no revision yet")
        super().__init__(
            f"the configuration has changed: If-Match {if_match} does not match the current "
            f"configuration hash {current_hash} ({where}); fetch it again and retry")
