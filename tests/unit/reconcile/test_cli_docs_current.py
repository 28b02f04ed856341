"""docs/cli.md ends with the reference generated from the commands' help: it must be current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_cli_reference_is_generated_from_the_current_help() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-cli-docs"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr + "\n(run scripts/gen-cli-docs)"
    text = (ROOT / "docs" / "cli.md").read_text()
    for command in ("tollway config sync", "tollway config diff", "tollway file patch",
                    "tollway route test", "tollway jwt sign"):
        assert f"### `{command}`" in text
