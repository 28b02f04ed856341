"""`registry.configure` (the `plugins` setting) in-process with the example installed as an
entry point: bundled, off, custom names, idempotence, unknown and unloadable names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tollway.plugins import registry


@pytest.fixture
def saved_registry() -> Iterator[None]:
    """configure() changes the process-wide registry: put it back as it was."""
    plugins = dict(registry._PLUGINS)
    shadowed = {k: list(v) for k, v in registry._SHADOWED.items()}
    yield
    registry._PLUGINS.clear()
    registry._PLUGINS.update(plugins)
    registry._SHADOWED.clear()
    registry._SHADOWED.update(shadowed)


@pytest.fixture
def on_path(saved_registry: None, installed_stamp: Path,
            monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(installed_stamp))
    return installed_stamp


def test_configure_is_idempotent(on_path: Path) -> None:
    bundled = set(registry.load_bundled())
    assert "cors" in bundled and "header-stamp" not in bundled
    assert set(registry.configure("bundled,header-stamp")) == bundled | {"header-stamp"}
    cls = registry.get("header-stamp")
    assert cls is not None and cls.__name__ == "HeaderStamp"
    assert set(registry.configure("bundled")) == bundled
    assert registry.get("header-stamp") is None
    assert registry.configure("off") == []
    assert registry.names() == []
    assert set(registry.configure("bundled")) == bundled  # 'off' did not lose them
    assert registry.configure(" header-stamp , cors ") == ["cors", "header-stamp"]
    assert registry.names() == ["cors", "header-stamp"]


def test_unknown_name(on_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        registry.configure("bundled,nope")
    assert str(info.value) == ("plugins: 'nope' is neither bundled nor installed as a "
                               "'tollway.plugins' entry point")


def test_entry_point_that_does_not_import(saved_registry: None, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[tollway.plugins]\nbroken = no_such_module_for_tollway:Plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError) as info:
        registry.configure("bundled,broken")
    assert str(info.value) == (
        "plugins: cannot load 'broken' (entry point 'no_such_module_for_tollway:Plugin'): "
        "ModuleNotFoundError: No module named 'no_such_module_for_tollway'")
