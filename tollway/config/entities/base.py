"""What the declarative layer needs to know about an entity besides its schema."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tollway.config.schema import UNSET, Field, Record

# (schema to validate with, raw input) -> (normalised entity, Kong error table)
EntityValidator = Callable[[Record, dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]


def _default_validator(
    schema: Record, data: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    return schema.validate(data)


@dataclass(frozen=True)
class EntitySpec:
    """An entity type: its schema plus Kong's DAO metadata (keys, uniqueness, nesting)."""

    name: str  # plural, as in the declarative file: "services"
    singular: str  # Kong's flattened_errors entity_type: "service"
    schema: Record
    endpoint_key: str | None = None
    endpoint_key_unique: bool = True
    cache_key: tuple[str, ...] | None = None
    # other fields that must be unique across the whole config (custom_id, cert_digest)
    unique: tuple[str, ...] = ()
    # filled with a random string when absent (credential keys and secrets)
    auto: tuple[str, ...] = ()
    # entity names that may be nested inside a record of this entity
    children: tuple[str, ...] = ()
    validator: EntityValidator = _default_validator
    # checks that need the entity's foreign keys, run once the key of a nested record's
    # parent is filled in: normalised entity -> field errors (plugins' no_consumer & co.)
    link_check: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    _nested: dict[str, Record] = field(default_factory=dict, compare=False, repr=False)

    @property
    def foreign_fields(self) -> dict[str, str]:
        """field name -> referenced entity name."""
        return {
            name: f.reference
            for name, f in self.schema.fields.items()
            if f.type == "foreign" and f.reference is not None
        }

    def nested_schema(self) -> Record:
        """The schema used for a record nested in a parent: every foreign field must be null
        (the parent's key is filled in afterwards), as Kong's ``copy_record`` does."""
        cached = self._nested.get("nested")
        if cached is None:
            fields: dict[str, Field] = {}
            for name, f in self.schema.fields.items():
                if f.type == "foreign":
                    f = f.with_(eq=None, required=False, default=UNSET)
                fields[name] = f
            cached = Record(
                fields=fields,
                entity_checks=self.schema.entity_checks,
                shorthands=self.schema.shorthands,
                subschema_key=self.schema.subschema_key,
                subschemas=self.schema.subschemas,
                allow_unknown=self.schema.allow_unknown,
                normalizer=self.schema.normalizer,
            )
            self._nested["nested"] = cached
        return cached

    def validate(
        self, data: dict[str, Any], nested: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.validator(self.nested_schema() if nested else self.schema, data)
