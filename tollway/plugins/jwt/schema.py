"""jwt configuration (kong/plugins/jwt/schema.lua, 3.8+ with `realm`)."""

from __future__ import annotations

from typing import Any

from tollway.config.schema import EntityCheck, Field, Record

MAX_EXPIRATION = 31536000


def _maximum_expiration_needs_exp(c: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    # Kong: conditional { if_field = "config.maximum_expiration", if_match = { gt = 0 },
    # then_field = "config.claims_to_verify", then_match = { contains = "exp" } }.
    # A null claims_to_verify passes, as a null value passes Kong's then_match.
    maximum, claims = c.get("maximum_expiration"), c.get("claims_to_verify")
    if not maximum or maximum <= 0 or claims is None or "exp" in claims:
        return [], {}
    return ["failed conditional validation given value of field "
            "'config.maximum_expiration'"], {"claims_to_verify": "expected to contain: exp"}


config_schema = Record(
    fields={
        "uri_param_names": Field.set(Field.string(), default=["jwt"]),
        "cookie_names": Field.set(Field.string(), default=[]),
        "key_claim_name": Field.string(default="iss"),
        "secret_is_base64": Field.boolean(required=True, default=False),
        "claims_to_verify": Field.set(Field.string(one_of=["exp", "nbf"])),
        "anonymous": Field.string(),
        "run_on_preflight": Field.boolean(required=True, default=True),
        "maximum_expiration": Field.number(default=0, between=(0, MAX_EXPIRATION)),
        "header_names": Field.set(Field.string(), default=["authorization"]),
        "realm": Field.string(),
    },
    entity_checks=[EntityCheck("conditional", ("maximum_expiration", "claims_to_verify"),
                               _maximum_expiration_needs_exp)],
)
