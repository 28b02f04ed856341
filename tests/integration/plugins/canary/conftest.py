"""The canary tests use the data-plane helpers (scriptable upstreams) and the node helpers
(`tollway start` as a subprocess), imported from their directories."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dataplane"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "node"))
