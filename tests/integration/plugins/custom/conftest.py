"""Fixtures for the custom-plugin tests: the worked example of docs/plugin-development.md
(examples/plugins/tollway-header-stamp) registered in-process, or pip-installed into a
temporary directory for real nodes, plus in-process gateways and upstreams."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[4]
EXAMPLE = ROOT / "examples" / "plugins" / "tollway-header-stamp"
_INTEGRATION = ROOT / "tests" / "integration"
for _d in (_INTEGRATION / "dataplane", _INTEGRATION / "node", EXAMPLE):
    if str(_d) not in sys.path:
        sys.path.insert(0, str(_d))

from dataplane_helpers import (  # noqa: E402
    Gateway,
    RawClient,
    Upstream,
    echo_path,
    upstream_thread,
)
from tollway_header_stamp import HeaderStamp  # noqa: E402

from tollway.plugins import registry  # noqa: E402


@pytest.fixture
def header_stamp() -> Iterator[type[HeaderStamp]]:
    """The example plugin registered in this process (as `configure` does for an enabled
    entry point), unregistered afterwards."""
    registry.register(HeaderStamp)
    yield HeaderStamp
    registry.unregister(HeaderStamp.name)


@pytest.fixture
def stamp_upstream() -> Iterator[Upstream]:
    with upstream_thread(echo_path, "stamp-upstream") as up:
        yield up


@pytest.fixture
def stamp_gateway(header_stamp: type[HeaderStamp]) -> Iterator[Callable[..., Gateway]]:
    made: list[Gateway] = []

    def make(document: dict[str, Any], **overrides: str) -> Gateway:
        gw = Gateway(document, overrides)
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.close()


@pytest.fixture
def stamp_client() -> Iterator[Callable[[int], RawClient]]:
    made: list[RawClient] = []

    def make(port: int) -> RawClient:
        c = RawClient(port, 5.0)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture(scope="session")
def installed_stamp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package pip-installed into a directory of its own (the package and its
    dist-info with the `tollway.plugins` entry point): put it on PYTHONPATH to install it.
    Built from a copy, so the source tree gets no build/ or egg-info; no index, no network."""
    base = tmp_path_factory.mktemp("header-stamp")
    src = base / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__"))
    site = base / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
         "--no-index", "--target", str(site), str(src)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (site / "tollway_header_stamp" / "handler.py").exists()
    return site
