"""Kong's named entity checks (``at_least_one_of``, ``conditional`` ...) for ``Record``.

Each factory returns an ``EntityCheck``; messages are Kong's ``validation_errors`` texts.
``prefix`` is prepended to the field names in the messages only (a plugin's config checks
are worded as Kong's plugin-level checks, ``'config.second'``; see ``EntityCheck.prefixed``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tollway.config.schema import EntityCheck, Field, quote_list, validate_field

__all__ = [
    "Match",
    "at_least_one_of",
    "conditional",
    "conditional_at_least_one_of",
    "custom_entity_check",
    "distinct",
    "mutually_exclusive",
    "mutually_required",
    "only_one_of",
]


def _nonempty(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


def _listed(names: Sequence[str], prefix: str) -> str:
    return quote_list([prefix + n for n in names])


def at_least_one_of(*names: str, prefix: str = "") -> EntityCheck:
    def fn(e: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        if any(_nonempty(e.get(n)) for n in names):
            return [], {}
        return [f"at least one of these fields must be non-empty: {_listed(names, prefix)}"], {}

    return EntityCheck(
        "at_least_one_of", names, fn, lambda p: at_least_one_of(*names, prefix=p + prefix)
    )


def only_one_of(*names: str, prefix: str = "") -> EntityCheck:
    def fn(e: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        if sum(1 for n in names if _nonempty(e.get(n))) == 1:
            return [], {}
        return [f"exactly one of these fields must be non-empty: {_listed(names, prefix)}"], {}

    return EntityCheck("only_one_of", names, fn, lambda p: only_one_of(*names, prefix=p + prefix))


def mutually_required(*names: str, prefix: str = "") -> EntityCheck:
    def fn(e: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        count = sum(1 for n in names if _nonempty(e.get(n)))
        if count in (0, len(names)):
            return [], {}
        return [f"all or none of these fields must be set: {_listed(names, prefix)}"], {}

    return EntityCheck(
        "mutually_required", names, fn, lambda p: mutually_required(*names, prefix=p + prefix)
    )


def mutually_exclusive(*names: str, prefix: str = "") -> EntityCheck:
    def fn(e: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        if sum(1 for n in names if _nonempty(e.get(n))) <= 1:
            return [], {}
        return [f"only one or none of these fields must be set: {_listed(names, prefix)}"], {}

    return EntityCheck(
        "mutually_exclusive", names, fn, lambda p: mutually_exclusive(*names, prefix=p + prefix)
    )


def distinct(*names: str, prefix: str = "") -> EntityCheck:
    def fn(e: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        seen: list[Any] = []
        for n in names:
            v = e.get(n)
            if _nonempty(v):
                if v in seen:
                    listed = _listed(names, prefix)
                    return [f"values of these fields must be distinct: {listed}"], {}
                seen.append(v)
        return [], {}

    return EntityCheck("distinct", names, fn, lambda p: distinct(*names, prefix=p + prefix))


# A conditional's match is either a constraint Field or a predicate on the value.
Match = Field | Callable[[Any], bool]


def _matches(match: Match, value: Any) -> tuple[bool, Any]:
    if isinstance(match, Field):
        _, err = validate_field(match, value)
        return err is None, err
    return bool(match(value)), None


def conditional(
    if_field: str,
    if_match: Match,
    then_field: str,
    then_match: Match,
    then_err: str | None = None,
    prefix: str = "",
) -> EntityCheck:
    """If ``if_field`` matches, ``then_field`` must match; a failure is reported both on the
    field and as ``failed conditional validation given value of field '<if_field>'``."""

    def fn(e: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        if_value = e.get(if_field)
        if if_value is None:
            return [], {}
        ok, _ = _matches(if_match, if_value)
        if not ok:
            return [], {}
        ok, err = _matches(then_match, e.get(then_field))
        if ok:
            return [], {}
        message = then_err or err or "invalid value"
        return [f"failed conditional validation given value of field '{prefix}{if_field}'"], {
            then_field: message
        }

    def prefixed(p: str) -> EntityCheck:
        return conditional(if_field, if_match, then_field, then_match, then_err, p + prefix)

    return EntityCheck("conditional", (if_field, then_field), fn, prefixed)


def conditional_at_least_one_of(
    if_field: str,
    if_match: Match,
    then_at_least_one_of: Sequence[str],
    then_err: str | None = None,
    else_match: Match | None = None,
    else_then_at_least_one_of: Sequence[str] | None = None,
    else_then_err: str | None = None,
    prefix: str = "",
) -> EntityCheck:
    """Kong's ``conditional_at_least_one_of``; ``%s`` in the *_err texts gets the field list."""

    def require(names: Sequence[str], err: str | None, e: dict[str, Any]) -> list[str]:
        if any(_nonempty(e.get(n)) for n in names):
            return []
        listed = _listed(names, prefix)
        if err:
            return [err % listed if "%s" in err else err]
        return [f"at least one of these fields must be non-empty: {listed}"]

    def fn(e: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        value = e.get(if_field)
        if value is None:
            return [], {}
        if _matches(if_match, value)[0]:
            return require(then_at_least_one_of, then_err, e), {}
        if (
            else_match is not None
            and else_then_at_least_one_of is not None
            and _matches(else_match, value)[0]
        ):
            return require(else_then_at_least_one_of, else_then_err, e), {}
        return [], {}

    def prefixed(p: str) -> EntityCheck:
        return conditional_at_least_one_of(
            if_field, if_match, then_at_least_one_of, then_err, else_match,
            else_then_at_least_one_of, else_then_err, p + prefix,
        )

    return EntityCheck("conditional_at_least_one_of", (if_field,), fn, prefixed)


def custom_entity_check(
    field_sources: Sequence[str],
    fn: Callable[[dict[str, Any]], str | None],
) -> EntityCheck:
    def run(e: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        msg = fn(e)
        return ([msg] if msg else []), {}

    return EntityCheck("custom_entity_check", tuple(field_sources), run)
