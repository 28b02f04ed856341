"""consumers, plugins, certificates, snis, ca_certificates and the credential entities."""

from __future__ import annotations

from typing import Any

from tollway.config import typedefs as t
from tollway.config.checks import (
    at_least_one_of,
    conditional,
    custom_entity_check,
    mutually_required,
)
from tollway.config.entities import pem
from tollway.config.entities.base import EntitySpec
from tollway.config.schema import ENTITY, EntityCheck, Field, Record
from tollway.plugins import registry

CONSUMERS = EntitySpec(
    name="consumers",
    singular="consumer",
    endpoint_key="username",
    unique=("custom_id",),
    children=("plugins", "jwt_secrets", "keyauth_credentials"),
    schema=Record(
        fields={
            "id": t.uuid(),
            "username": Field.string(unique=True),
            "custom_id": Field.string(unique=True),
            "tags": t.tags(),
        },
        entity_checks=[at_least_one_of("custom_id", "username")],
    ),
)

DEFAULT_PLUGIN_PROTOCOLS = ["grpc", "grpcs", "http", "https"]


def _validate_plugin(schema: Record, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    name = data.get("name")
    plugin = registry.get(name) if isinstance(name, str) else None
    work = dict(data)
    # a plugin may narrow/widen its default protocols (ip-restriction adds tcp/tls)
    if plugin is not None and "protocols" not in work and getattr(plugin, "protocols", None):
        work["protocols"] = list(plugin.protocols)
    out, errors = schema.validate(work)
    if "name" in errors or not isinstance(name, str):
        return out, errors
    config, config_errors = registry.validate_plugin_config(name, data.get("config"))
    out["config"] = config if plugin is not None else data.get("config")
    for key, value in config_errors.items():
        if key == ENTITY:
            # the config record's entity checks are the plugin entity's (Kong's wording)
            errors.setdefault(ENTITY, []).extend(value)
        else:
            errors.setdefault(key, value)
    return out, errors


def _check_plugin_scope(out: dict[str, Any]) -> dict[str, Any]:
    """Kong's ``typedefs.no_consumer`` & co.: run once the foreign keys are known, including
    the one filled from the nesting parent (``consumers[].plugins[]``)."""
    name = out.get("name")
    plugin = registry.get(name) if isinstance(name, str) else None
    errors: dict[str, Any] = {}
    if plugin is not None:
        for scope in ("consumer", "route", "service"):
            if getattr(plugin, f"no_{scope}", False) and out.get(scope) is not None:
                errors[scope] = "value must be null"
    return errors


PLUGINS = EntitySpec(
    name="plugins",
    singular="plugin",
    endpoint_key="instance_name",
    cache_key=("name", "route", "service", "consumer"),
    validator=_validate_plugin,
    link_check=_check_plugin_scope,
    schema=Record(
        fields={
            "id": t.uuid(),
            "name": Field.string(required=True),
            "instance_name": t.utf8_name(unique=True),
            "route": Field.foreign("routes"),
            "service": Field.foreign("services"),
            "consumer": Field.foreign("consumers"),
            # validated against the plugin's own schema by _validate_plugin
            "config": Field.any(),
            "protocols": t.protocols(required=True, default=DEFAULT_PLUGIN_PROTOCOLS),
            "enabled": Field.boolean(required=True, default=True),
            "tags": t.tags(),
        },
    ),
)


def _cert_matches_key(e: dict[str, Any]) -> str | None:
    if isinstance(e.get("cert"), str) and isinstance(e.get("key"), str):
        return pem.cert_key_mismatch(e["cert"], e["key"])
    return None


def _alt_cert_matches_key(e: dict[str, Any]) -> str | None:
    if isinstance(e.get("cert_alt"), str) and isinstance(e.get("key_alt"), str):
        return pem.alt_cert_key_mismatch(e["cert_alt"], e["key_alt"])
    return None


def _different_key_types(e: dict[str, Any]) -> str | None:
    if isinstance(e.get("cert"), str) and isinstance(e.get("cert_alt"), str):
        return pem.same_key_type(e["cert"], e["cert_alt"])
    return None


CERTIFICATES = EntitySpec(
    name="certificates",
    singular="certificate",
    children=("snis",),
    schema=Record(
        fields={
            "id": t.uuid(),
            "cert": Field.string(required=True, custom_validator=pem.check_certificate),
            "key": Field.string(required=True, custom_validator=pem.check_key),
            "cert_alt": Field.string(custom_validator=pem.check_certificate),
            "key_alt": Field.string(custom_validator=pem.check_key),
            "tags": t.tags(),
        },
        entity_checks=[
            mutually_required("cert_alt", "key_alt"),
            custom_entity_check(("cert", "key"), _cert_matches_key),
            custom_entity_check(("cert_alt", "key_alt"), _alt_cert_matches_key),
            custom_entity_check(("cert", "cert_alt"), _different_key_types),
        ],
    ),
)

SNIS = EntitySpec(
    name="snis",
    singular="sni",
    endpoint_key="name",
    schema=Record(
        fields={
            "id": t.uuid(),
            "name": t.wildcard_host(required=True, unique=True),
            "tags": t.tags(),
            "certificate": Field.foreign("certificates", required=True),
        },
    ),
)


def _fill_digest(raw: dict[str, Any], out: dict[str, Any]) -> None:
    # cert_digest is computed from the certificate, whatever the input said
    if isinstance(out.get("cert"), str):
        out["cert_digest"] = pem.cert_digest(out["cert"]) or out.get("cert_digest")


def _ca_certificate(e: dict[str, Any]) -> str | None:
    return pem.ca_certificate_problem(e["cert"]) if isinstance(e.get("cert"), str) else None


CA_CERTIFICATES = EntitySpec(
    name="ca_certificates",
    singular="ca_certificate",
    unique=("cert_digest",),
    schema=Record(
        fields={
            "id": t.uuid(),
            "cert": Field.string(required=True, custom_validator=pem.check_certificate),
            "cert_digest": Field.string(unique=True),
            "tags": t.tags(),
        },
        normalizer=_fill_digest,
        entity_checks=[custom_entity_check(("cert",), _ca_certificate)],
    ),
)

KEYAUTH_CREDENTIALS = EntitySpec(
    name="keyauth_credentials",
    singular="keyauth_credential",
    endpoint_key="key",
    auto=("key",),
    schema=Record(
        fields={
            "id": t.uuid(),
            "consumer": Field.foreign("consumers", required=True),
            "key": Field.string(unique=True, auto=True),
            "tags": t.tags(),
        },
    ),
)

JWT_ALGORITHMS = [
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "ES256",
    "ES384",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
]


def _unless_jwks(check: EntityCheck) -> EntityCheck:
    def fn(e: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        return ([], {}) if e.get("jwks_uri") else check.fn(e)

    return EntityCheck(check.name, check.fields, fn)


JWT_SECRETS = EntitySpec(
    name="jwt_secrets",
    singular="jwt_secret",
    endpoint_key="key",
    auto=("key", "secret"),
    schema=Record(
        fields={
            "id": t.uuid(),
            "consumer": Field.foreign("consumers", required=True),
            "key": Field.string(unique=True, auto=True),
            "secret": Field.string(auto=True),
            "rsa_public_key": Field.string(),
            "algorithm": Field.string(default="HS256", one_of=JWT_ALGORITHMS),
            "tags": t.tags(),
            # beyond Kong: verify with the keys of this JSON Web Key Set (jwt plugin)
            "jwks_uri": Field.string(match=r"^https?://"),
        },
        # asymmetric algorithms verify with the public key, so it must be given
        # (unless the keys come from jwks_uri)
        entity_checks=[
            _unless_jwks(conditional(
                "algorithm", Field.any(one_of=[a]), "rsa_public_key", Field.any(required=True)
            ))
            for a in JWT_ALGORITHMS
            if not a.startswith("HS")
        ],
    ),
)
