"""Kong's entity schemas, written in the schema engine (``tollway.config.schema``).

``ENTITIES`` maps the declarative (plural) entity names to their ``EntitySpec``, in
Kong's dependency order; ``ENTITY_NAMES`` is the key order of ``Config.entities``.
"""

from __future__ import annotations

from tollway.config.entities.base import EntitySpec
from tollway.config.entities.others import (
    CA_CERTIFICATES,
    CERTIFICATES,
    CONSUMERS,
    JWT_SECRETS,
    KEYAUTH_CREDENTIALS,
    PLUGINS,
    SNIS,
)
from tollway.config.entities.routes import ROUTES
from tollway.config.entities.services import SERVICES
from tollway.config.entities.upstreams import TARGETS, UPSTREAMS, normalize_target

__all__ = ["ENTITIES", "ENTITY_NAMES", "EntitySpec", "normalize_target"]

# Config.entities key order (docs/architecture.md)
ENTITY_NAMES: tuple[str, ...] = (
    "services",
    "routes",
    "consumers",
    "plugins",
    "upstreams",
    "targets",
    "certificates",
    "snis",
    "ca_certificates",
    "jwt_secrets",
    "keyauth_credentials",
)

# processing order: referenced entities before the ones that reference them
ENTITIES: dict[str, EntitySpec] = {
    spec.name: spec
    for spec in (
        CONSUMERS,
        CERTIFICATES,
        CA_CERTIFICATES,
        SERVICES,
        ROUTES,
        SNIS,
        UPSTREAMS,
        TARGETS,
        PLUGINS,
        JWT_SECRETS,
        KEYAUTH_CREDENTIALS,
    )
}
