"""Make the checkout importable when the venv has no (editable) tollway install.

`make install` installs the package editable; a bare venv does not, and these tests should
still run with `.venv/bin/pytest tests/unit/mock`.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
