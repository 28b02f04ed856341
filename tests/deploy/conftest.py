"""tests/deploy reuse the node tests' `tollway start` helper (tests/integration/node)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "node"))
