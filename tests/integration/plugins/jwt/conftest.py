"""Fixtures: see auth_plugins_support.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from auth_plugins_support import auth_env

__all__ = ["auth_env"]
