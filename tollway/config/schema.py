"""A small declarative schema engine modelled on Kong's schema tables.

Entities and plugin ``config`` records are declared as data (entity checks come from
``tollway.config.checks``)::

    Record(
        fields={
            "second": Field.number(gt=0),
            "policy": Field.string(default="local", one_of=["local", "redis"]),
        },
        entity_checks=[at_least_one_of("second", "minute")],
    )

``Record.validate(data)`` returns ``(normalised, errors)``: the input with defaults filled
and every declared field present (``None`` where unset), and Kong's nested error table
(``{}`` when valid). Validation never stops at the first problem. Array and map element
errors are keyed by their 0-based index / key; ``to_kong_fields`` renders them as Kong does
on the wire (arrays as lists padded with ``null``).

Message texts are Kong's generic ones (``kong/db/schema/init.lua``) so error bodies match.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "UNSET",
    "EntityCheck",
    "Field",
    "Record",
    "Shorthand",
    "fmt_value",
    "quote_list",
    "to_kong_fields",
    "validate_field",
]


class _Unset:
    """Sentinel: "attribute not given" (``None`` is a meaningful value: JSON null)."""

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()

REQUIRED = "required field missing"
UNKNOWN = "unknown field"
ENTITY = "@entity"

_TYPE_ERRORS = {
    "string": "expected a string",
    "integer": "expected an integer",
    "number": "expected a number",
    "boolean": "expected a boolean",
    "array": "expected an array",
    "set": "expected a set",
    "map": "expected a map",
    "record": "expected a record",
    "foreign": "expected a record",
}

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)

# A custom validator returns None when the value is fine, else the error message.
Validator = Callable[[Any], str | None]


def fmt_value(value: Any) -> str:
    """Render a value the way Lua's tostring would inside Kong's messages."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def quote_list(names: Sequence[str]) -> str:
    """``'a', 'b', 'c'``: how Kong lists field names in entity-check messages."""
    return ", ".join(f"'{n}'" for n in names)


@dataclass(frozen=True)
class Field:
    """One field: a type plus optional constraints (Kong's field attributes)."""

    type: str = "any"
    required: bool = False
    default: Any = UNSET
    # record fields are filled with their defaults when absent unless nullable
    nullable: bool = False
    eq: Any = UNSET
    ne: Any = UNSET
    one_of: Sequence[Any] | None = None
    not_one_of: Sequence[Any] | None = None
    between: tuple[float, float] | None = None
    gt: float | None = None
    len_eq: int | None = None
    len_min: int | None = None
    len_max: int | None = None
    starts_with: str | None = None
    match: str | None = None
    not_match: str | None = None
    contains: Any = UNSET
    uuid: bool = False
    mutually_exclusive_subsets: Sequence[Sequence[str]] | None = None
    custom_validator: Validator | None = None
    # replaces the message of a failed constraint (not of a type error), like Kong's `err`
    err: str | None = None
    elements: Field | None = None
    keys: Field | None = None
    values: Field | None = None
    record: Record | None = None
    reference: str | None = None
    # metadata used by the declarative layer
    unique: bool = False
    auto: bool = False

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def string(cls, **kw: Any) -> Field:
        return cls(type="string", **kw)

    @classmethod
    def integer(cls, **kw: Any) -> Field:
        return cls(type="integer", **kw)

    @classmethod
    def number(cls, **kw: Any) -> Field:
        return cls(type="number", **kw)

    @classmethod
    def boolean(cls, **kw: Any) -> Field:
        return cls(type="boolean", **kw)

    @classmethod
    def array(cls, elements: Field, **kw: Any) -> Field:
        return cls(type="array", elements=elements, **kw)

    @classmethod
    def set(cls, elements: Field, **kw: Any) -> Field:
        return cls(type="set", elements=elements, **kw)

    @classmethod
    def map(cls, keys: Field, values: Field, **kw: Any) -> Field:
        return cls(type="map", keys=keys, values=values, **kw)

    @classmethod
    def record_of(cls, record: Record | Mapping[str, Field], **kw: Any) -> Field:
        rec = record if isinstance(record, Record) else Record(fields=record)
        return cls(type="record", record=rec, **kw)

    @classmethod
    def foreign(cls, reference: str, **kw: Any) -> Field:
        return cls(type="foreign", reference=reference, **kw)

    @classmethod
    def any(cls, **kw: Any) -> Field:
        return cls(type="any", **kw)

    def with_(self, **kw: Any) -> Field:
        """A copy with some attributes changed (typedef specialisation)."""
        return replace(self, **kw)

    def default_value(self) -> Any:
        if self.default is not UNSET:
            return copy.deepcopy(self.default)
        if self.type == "record" and not self.nullable:
            return {}
        return None


def _check_type(f: Field, value: Any) -> tuple[Any, str | None]:
    t = f.type
    if t == "string":
        return (value, None) if isinstance(value, str) else (value, _TYPE_ERRORS[t])
    if t == "integer":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value, _TYPE_ERRORS[t]
        if isinstance(value, float):
            if not value.is_integer():
                return value, _TYPE_ERRORS[t]
            value = int(value)  # JSON 5.0 is the integer 5, as in Lua
        return value, None
    if t == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value, _TYPE_ERRORS[t]
        return value, None
    if t == "boolean":
        return (value, None) if isinstance(value, bool) else (value, _TYPE_ERRORS[t])
    if t in ("array", "set"):
        return (value, None) if isinstance(value, list) else (value, _TYPE_ERRORS[t])
    if t in ("map", "record"):
        return (value, None) if isinstance(value, dict) else (value, _TYPE_ERRORS[t])
    if t == "foreign":
        # Declaratively a reference is a name/id string or a primary-key record {id: ...}.
        if isinstance(value, str) and value:
            return value, None
        if isinstance(value, dict) and isinstance(value.get("id"), str) and set(value) == {"id"}:
            return value, None
        return value, _TYPE_ERRORS[t]
    return value, None


def _sized(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | dict) else None


def _check_constraints(f: Field, value: Any) -> str | None:
    if f.eq is not UNSET and value != f.eq:
        return f"value must be {fmt_value(f.eq)}"
    if f.ne is not UNSET and value == f.ne:
        return f"value must not be {fmt_value(f.ne)}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if f.between is not None and not (f.between[0] <= value <= f.between[1]):
            lo, hi = f.between
            return f"value should be between {fmt_value(lo)} and {fmt_value(hi)}"
        if f.gt is not None and not value > f.gt:
            return f"value must be greater than {fmt_value(f.gt)}"
    size = _sized(value)
    if size is not None:
        if f.len_eq is not None and size != f.len_eq:
            return f"length must be {f.len_eq}"
        if f.len_min is not None and size < f.len_min:
            return f"length must be at least {f.len_min}"
        if f.len_max is not None and size > f.len_max:
            return f"length must be at most {f.len_max}"
        if f.type == "string" and f.len_min is None and size == 0:
            # Kong rejects "" for every string field unless len_min says otherwise.
            return "length must be at least 1"
    if isinstance(value, str):
        if f.match is not None and not re.search(f.match, value):
            return f"invalid value: {value}"
        if f.not_match is not None and re.search(f.not_match, value):
            return f"invalid value: {value}"
        if f.starts_with is not None and not value.startswith(f.starts_with):
            return f"should start with: {f.starts_with}"
        if f.uuid and not _UUID.match(value):
            return "expected a valid UUID"
    if f.one_of is not None and value not in f.one_of:
        return "expected one of: " + ", ".join(fmt_value(v) for v in f.one_of)
    if f.not_one_of is not None and value in f.not_one_of:
        return "must not be one of: " + ", ".join(fmt_value(v) for v in f.not_one_of)
    if f.contains is not UNSET and isinstance(value, list) and f.contains not in value:
        return f"expected to contain: {fmt_value(f.contains)}"
    if f.mutually_exclusive_subsets is not None and isinstance(value, list):
        touched = [s for s in f.mutually_exclusive_subsets if any(v in s for v in value)]
        if len(touched) > 1:
            rendered = ", ".join(
                "(" + ", ".join(f"'{x}'" for x in s) + ")" for s in f.mutually_exclusive_subsets
            )
            return f"these sets are mutually exclusive: {rendered}"
    return None


def validate_field(f: Field, value: Any) -> tuple[Any, Any]:
    """Validate one value; returns ``(normalised value, error or None)``.

    The error is a message string, or a nested table for records/arrays/maps.
    """
    if value is None:
        if f.required:
            return None, REQUIRED
        return None, None
    if f.eq is None and f.eq is not UNSET:
        # `eq = null`: the field must not be given at all in this context
        return value, f.err or "value must be null"
    value, err = _check_type(f, value)
    if err is not None:
        return value, err
    cerr = _check_constraints(f, value)
    if cerr is not None:
        return value, f.err or cerr

    nested: Any = None
    if f.type in ("array", "set") and f.elements is not None:
        items: list[Any] = list(value)
        if f.type == "set":
            # Kong stores sets without duplicates; order of first appearance is kept.
            deduped: list[Any] = []
            for item in items:
                if item not in deduped:
                    deduped.append(item)
            items = deduped
        out_items: list[Any] = []
        elem_errors: dict[int, Any] = {}
        for i, item in enumerate(items):
            # a null element is never acceptable: elements are implicitly required
            elem = f.elements.with_(required=True) if item is None else f.elements
            v, e = validate_field(elem, item)
            out_items.append(v)
            if e is not None:
                elem_errors[i] = e
        value = out_items
        nested = elem_errors or None
    elif f.type == "map":
        out_map: dict[Any, Any] = {}
        map_errors: dict[Any, Any] = {}
        for k, v in value.items():
            if f.keys is not None:
                _, kerr = validate_field(f.keys, k)
                if kerr is not None:
                    map_errors[k] = kerr
                    out_map[k] = v
                    continue
            if f.values is not None:
                v, verr = validate_field(f.values.with_(required=True), v)
                if verr is not None:
                    map_errors[k] = verr
            out_map[k] = v
        value = out_map
        nested = map_errors or None
    elif f.type == "record" and f.record is not None:
        value, rec_errors = f.record.validate(value)
        nested = rec_errors or None
    if nested is not None:
        return value, nested
    if f.custom_validator is not None:
        msg = f.custom_validator(value)
        if msg is not None:
            return value, msg
    return value, None


# -- entity checks ----------------------------------------------------------------------


@dataclass(frozen=True)
class EntityCheck:
    """A named check over several fields; ``fn`` returns (entity errors, field errors).

    The check is skipped when one of ``fields`` already failed field validation, as in Kong
    (the field error is the more useful one).

    ``prefixed(prefix)``, when given, is the same check naming its fields ``<prefix><field>``
    in its messages: a plugin's config checks are Kong's plugin-level checks, which say
    ``'config.second'`` (``tollway.plugins.registry``). The generic checks of
    ``tollway.config.checks`` provide it; a hand-written check words its own messages.
    """

    name: str
    fields: tuple[str, ...]
    fn: Callable[[dict[str, Any]], tuple[list[str], dict[str, Any]]]
    prefixed: Callable[[str], EntityCheck] | None = field(default=None, compare=False)

    def with_prefix(self, prefix: str) -> EntityCheck:
        return self.prefixed(prefix) if self.prefixed is not None else self


# -- records ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Shorthand:
    """An input-only field expanded into real fields before validation (e.g. ``url``)."""

    field: Field
    expand: Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class Record:
    """A record schema: ordered fields, entity checks, shorthands and subschemas.

    ``subschema_key`` names a field whose (first) value selects a subschema in
    ``subschemas``; the subschema's fields replace the base fields of the same name and its
    entity checks are added (Kong uses this for route protocols and plugin configs).
    ``normalizer(raw_input, output)`` may adjust the output after field validation and
    before the entity checks run.
    """

    fields: Mapping[str, Field] = field(default_factory=dict)
    entity_checks: Sequence[EntityCheck] = ()
    shorthands: Mapping[str, Shorthand] = field(default_factory=dict)
    subschema_key: str | None = None
    subschemas: Mapping[str, Record] = field(default_factory=dict)
    allow_unknown: bool = False
    normalizer: Callable[[dict[str, Any], dict[str, Any]], None] | None = None

    def _effective(self, data: dict[str, Any]) -> tuple[dict[str, Field], list[EntityCheck]]:
        fields = dict(self.fields)
        checks = list(self.entity_checks)
        if self.subschema_key is None:
            return fields, checks
        key = data.get(self.subschema_key, UNSET)
        if key is UNSET:
            key_field = fields.get(self.subschema_key)
            key = key_field.default_value() if key_field is not None else None
        if isinstance(key, list):
            key = key[0] if key else None
        sub = self.subschemas.get(key) if isinstance(key, str) else None
        if sub is not None:
            fields.update(sub.fields)
            checks.extend(sub.entity_checks)
        return fields, checks

    def validate(self, data: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        errors: dict[str, Any] = {}
        work: dict[str, Any] = dict(data or {})
        for name, sh in self.shorthands.items():
            if name not in work:
                continue
            raw = work.pop(name)
            value, err = validate_field(sh.field, raw)
            if err is not None:
                errors[name] = err
            elif value is not None:
                work.update(sh.expand(value))

        fields, checks = self._effective(work)
        out: dict[str, Any] = {}
        for name, f in fields.items():
            value = work.get(name, UNSET)
            if value is UNSET or (value is None and f.type == "record" and not f.nullable):
                value = f.default_value()
            value, err = validate_field(f, value)
            out[name] = value
            if err is not None:
                errors[name] = err
        for name, value in work.items():
            if name in fields:
                continue
            if self.allow_unknown:
                out[name] = value
            else:
                errors[name] = UNKNOWN

        if self.normalizer is not None:
            self.normalizer(work, out)

        entity_errors: list[str] = []
        for check in checks:
            if any(n in errors for n in check.fields):
                continue
            ent, field_errs = check.fn(out)
            entity_errors.extend(ent)
            for fname, msg in field_errs.items():
                errors.setdefault(fname, msg)
        if entity_errors:
            errors[ENTITY] = entity_errors
        return out, errors


def to_kong_fields(errors: Any) -> Any:
    """Render an error table as Kong JSON-encodes it: int-keyed tables become arrays
    (padded with ``null``), string-keyed ones objects."""
    if isinstance(errors, dict):
        if errors and all(isinstance(k, int) for k in errors):
            size = max(errors) + 1
            return [to_kong_fields(errors[i]) if i in errors else None for i in range(size)]
        return {str(k): to_kong_fields(v) for k, v in errors.items()}
    if isinstance(errors, list):
        return [to_kong_fields(v) for v in errors]
    return errors
