"""Shared by tests/deploy: the repository's paths, tool checks that skip (or fail under
CI=true), and probes for tollway commands other issues are still building."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
INSTALL_TOOLS = DEPLOY / "install-tools.sh"
BIN = Path(sys.executable).with_name("tollway")
TOLLWAY = str(BIN) if BIN.exists() else "tollway"


def skip_or_fail(reason: str) -> None:
    """A missing service or tool: skip with the reason, but fail under CI=true, where
    everything the tests need must be installed."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def require_tools(*tools: str) -> None:
    """Run deploy/install-tools.sh (apt-get install prometheus when root) if a tool is
    missing; then skip or fail when it still is."""
    if all(shutil.which(t) for t in tools):
        return
    proc = subprocess.run(["bash", str(INSTALL_TOOLS)], capture_output=True, text=True,
                          timeout=600)
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        skip_or_fail(f"{', '.join(missing)} not installed ({INSTALL_TOOLS.name}: "
                     f"{proc.stderr.strip() or proc.returncode})")


def tollway_has(*words: str) -> bool:
    """Whether `tollway WORDS... --help` exists (a command another issue is adding)."""
    proc = subprocess.run([TOLLWAY, *words, "--help"], capture_output=True, timeout=60)
    return proc.returncode == 0


def require_tollway(*words: str, issue: str) -> None:
    """Every command the assets use exists now: a missing one is a regression (named with
    the issue that built it), never a skip."""
    assert tollway_has(*words), f"`tollway {' '.join(words)}` is missing ({issue})"
