"""Errors raised while loading or validating a declarative configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConfigErrorItem:
    """One problem, located in the document as the user wrote it.

    ``path`` is 0-based and follows the input's own nesting, e.g.
    ``services[0].routes[1].paths[0]``; ``line`` is 1-based when a locator was given.
    """

    path: str
    message: str
    line: int | None = None
    file: str | None = None

    def __str__(self) -> str:
        if self.file and self.line is not None:
            return f"{self.file}:{self.line}: {self.path}: {self.message}"
        if self.line is not None:
            return f"{self.path}: {self.message} (line {self.line})"
        return f"{self.path}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "message": self.message, "line": self.line}


class ConfigError(Exception):
    """The document is invalid; ``errors`` lists every problem found, not just the first.

    ``fields`` is Kong's nested error table (the ``fields`` of a code-14 ``/config`` reply)
    and ``flattened`` Kong's ``flattened_errors`` list.
    """

    def __init__(
        self,
        errors: list[ConfigErrorItem],
        fields: dict[str, Any] | None = None,
        flattened: list[dict[str, Any]] | None = None,
    ) -> None:
        self.errors = list(errors)
        self.fields: dict[str, Any] = fields if fields is not None else {}
        self.flattened: list[dict[str, Any]] = flattened if flattened is not None else []
        super().__init__(self._summary())

    def _summary(self) -> str:
        if len(self.errors) == 1:
            return f"declarative config is invalid: {self.errors[0]}"
        lines = "\n".join(f"  {item}" for item in self.errors)
        return f"declarative config is invalid ({len(self.errors)} errors):\n{lines}"
