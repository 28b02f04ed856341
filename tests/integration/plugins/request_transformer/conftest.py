"""In-process gateways and scriptable upstreams from the data-plane test helpers."""

from __future__ import annotations

import sys
from pathlib import Path

_DATAPLANE = Path(__file__).resolve().parents[2] / "dataplane"
if str(_DATAPLANE) not in sys.path:
    sys.path.insert(0, str(_DATAPLANE))

from dataplane_fixtures import (  # noqa: E402, F401
    make_client,
    make_gateway,
    make_upstream,
    upstream_loop,
)
