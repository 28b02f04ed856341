"""Fixtures: see tests/integration/plugins/cors/edge_plugins_support.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cors"))

from edge_plugins_support import (
    edge_client,
    edge_gateway,
    edge_upstream,
    edge_upstreams,
)

__all__ = ["edge_client", "edge_gateway", "edge_upstream", "edge_upstreams"]
