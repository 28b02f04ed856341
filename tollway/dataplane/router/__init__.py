"""Kong ``traditional_compatible`` router (see docs/architecture.md).

Public API: ``build_router``/``build_router_from_config`` compile routes once per
configuration; ``Router.match`` returns a ``RouteMatch`` or None.
"""

from .paths import escape_path, normalize_path, upstream_path_v0
from .router import RouteMatch, Router, build_router, build_router_from_config

__all__ = [
    "RouteMatch",
    "Router",
    "build_router",
    "build_router_from_config",
    "escape_path",
    "normalize_path",
    "upstream_path_v0",
]
