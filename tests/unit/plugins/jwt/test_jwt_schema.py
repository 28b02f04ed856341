"""jwt config schema: defaults and every validation message (kong/plugins/jwt/schema.lua),
and the jwt_secrets credential's jwks_uri field."""

from __future__ import annotations

from typing import Any

import pytest

from tollway.config.declarative import validate
from tollway.config.errors import ConfigError
from tollway.plugins import registry

DEFAULTS = {
    "uri_param_names": ["jwt"],
    "cookie_names": [],
    "key_claim_name": "iss",
    "secret_is_base64": False,
    "claims_to_verify": None,
    "anonymous": None,
    "run_on_preflight": True,
    "maximum_expiration": 0,
    "header_names": ["authorization"],
    "realm": None,
}


def check(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    assert registry.get("jwt") is not None  # loads the bundled plugins
    return registry.validate_plugin_config("jwt", config)


def test_defaults() -> None:
    assert check({}) == (DEFAULTS, {})


def test_plugin_class_facts() -> None:
    cls = registry.get("jwt")
    assert (cls.priority, cls.no_consumer) == (1450, True)


@pytest.mark.parametrize(("config", "errors"), [
    ({"maximum_expiration": -1, "claims_to_verify": ["exp"]},
     {"maximum_expiration": "value should be between 0 and 31536000"}),
    ({"maximum_expiration": 31536001, "claims_to_verify": ["exp"]},
     {"maximum_expiration": "value should be between 0 and 31536000"}),
    ({"maximum_expiration": -1, "claims_to_verify": ["nbf"]},
     {"maximum_expiration": "value should be between 0 and 31536000"}),
    ({"maximum_expiration": 60, "claims_to_verify": ["nbf"]},
     {"claims_to_verify": "expected to contain: exp",
      "@entity": ["failed conditional validation given value of field "
                  "'config.maximum_expiration'"]}),
    ({"claims_to_verify": ["iat"]}, {"claims_to_verify": {0: "expected one of: exp, nbf"}}),
    ({"secret_is_base64": "yes"}, {"secret_is_base64": "expected a boolean"}),
    ({"run_on_preflight": None}, {"run_on_preflight": "required field missing"}),
    ({"key_claim_name": ""}, {"key_claim_name": "length must be at least 1"}),
    ({"uri_param_names": "jwt"}, {"uri_param_names": "expected a set"}),
    ({"realm": 1}, {"realm": "expected a string"}),
    ({"bogus": 1}, {"bogus": "unknown field"}),
])
def test_errors(config: dict[str, Any], errors: dict[str, Any]) -> None:
    # the config record's entity checks are reported as the plugin entity's `@entity`
    inside = {k: v for k, v in errors.items() if k != "@entity"}
    entity = {k: v for k, v in errors.items() if k == "@entity"}
    assert check(config)[1] == ({"config": inside} if inside else {}) | entity


@pytest.mark.parametrize("config", [
    {"maximum_expiration": 60, "claims_to_verify": ["exp", "nbf"]},
    {"maximum_expiration": 60},  # a null claims_to_verify passes Kong's conditional
    {"claims_to_verify": ["exp", "exp"]},
    {"realm": "api", "cookie_names": ["a"], "header_names": ["x-token"]},
])
def test_accepted(config: dict[str, Any]) -> None:
    assert check(config)[1] == {}


def test_sets_drop_duplicates() -> None:
    assert check({"claims_to_verify": ["exp", "exp"]})[0]["claims_to_verify"] == ["exp"]


def doc(secret: dict[str, Any]) -> dict[str, Any]:
    return {"_format_version": "3.0", "consumers": [{"username": "c", "jwt_secrets": [secret]}]}


def test_jwks_uri_field() -> None:
    config = validate(doc({"key": "k", "algorithm": "RS256",
                           "jwks_uri": "https://issuer.test/jwks.json"}))
    row = config.entities["jwt_secrets"][0]
    assert (row["jwks_uri"], row["rsa_public_key"]) == ("https://issuer.test/jwks.json", None)
    assert validate(doc({"key": "k"})).entities["jwt_secrets"][0]["jwks_uri"] is None


def test_rs256_needs_public_key_or_jwks_uri() -> None:
    with pytest.raises(ConfigError) as info:
        validate(doc({"key": "k", "algorithm": "RS256"}))
    assert any(e.path.endswith("rsa_public_key") and e.message == "required field missing"
               for e in info.value.errors)
    with pytest.raises(ConfigError) as info:
        validate(doc({"key": "k", "jwks_uri": "ftp://x"}))
    assert [e.message for e in info.value.errors] == ["invalid value: ftp://x"]


def test_consumer_scope_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        validate({"_format_version": "3.0", "consumers": [{"username": "c"}],
                  "plugins": [{"name": "jwt", "consumer": "c"}]})
    assert [(e.path, e.message) for e in info.value.errors] == [
        ("plugins[0].consumer", "value must be null")]
