"""`tollway config validate`: exit codes 0/1/64, error lines, JSON report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tollway.cli import commands
from tollway.cli.main import cli

ROOT = Path(__file__).resolve().parents[3]
GOOD = '_format_version: "3.0"\nservices:\n- name: s\n  url: http://h.example\n'
BAD = '_format_version: "3.0"\nservices:\n- name: s\n  port: x\n'


@pytest.fixture(scope="module")
def app() -> click.Group:
    config_group = cli.commands["config"]
    assert isinstance(config_group, click.Group)
    if "validate" not in config_group.commands:
        commands.register(cli, config_group)
    return cli


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    return {"good": str(tmp_path / "good.yaml"), "bad": str(tmp_path / "bad.yaml")}


def test_valid_file_exits_0(app: click.Group, files: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["config", "validate", files["good"]])
    assert result.exit_code == 0, result.output
    assert f"{files['good']}: OK" in result.output


def test_invalid_file_exits_1_with_file_line_path_message(
    app: click.Group, files: dict[str, str]
) -> None:
    result = CliRunner().invoke(app, ["config", "validate", files["good"], files["bad"]])
    assert result.exit_code == 1
    assert f"{files['good']}: OK" in result.stdout
    assert f"{files['bad']}:3: services[0].host: required field missing" in result.stderr
    assert f"{files['bad']}:4: services[0].port: expected an integer" in result.stderr


def test_json_output(app: click.Group, files: dict[str, str]) -> None:
    result = CliRunner().invoke(
        app, ["config", "validate", "--json-output", files["good"], files["bad"]]
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    good, bad = report["files"]
    assert good["valid"] and good["entities"] == {"services": 1} and len(good["hash"]) == 32
    assert bad["errors"][0] == {
        "path": "services[0].host",
        "message": "required field missing",
        "line": 3,
    }


def test_process_exit_codes(files: dict[str, str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tollway", "config", "validate", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert run(files["good"]).returncode == 0
    bad = run(files["bad"])
    assert bad.returncode == 1 and "services[0].port: expected an integer" in bad.stderr
    assert run().returncode == 64  # usage error: no FILE


ROUTES = (
    '_format_version: "3.0"\n'
    "routes:\n"
    "- name: r\n"
    "  service: s\n"
    "  paths: [/x]\n"
    "- name: r2\n"
    "  service: nope\n"
    "  paths: [/y]\n"
)


@pytest.fixture
def split(tmp_path: Path) -> dict[str, str]:
    """A service in one file, routes referencing it (and a missing one) in another."""
    (tmp_path / "services.yaml").write_text(GOOD)
    (tmp_path / "routes.yaml").write_text(ROUTES)
    (tmp_path / "routes-ok.yaml").write_text(ROUTES.split("- name: r2")[0])
    return {name: str(tmp_path / f"{name}.yaml") for name in ("services", "routes", "routes-ok")}


def test_merge_resolves_references_across_files(app: click.Group, split: dict[str, str]) -> None:
    files = [split["services"], split["routes-ok"]]
    # one by one, the routes file cannot see the service
    alone = CliRunner().invoke(app, ["config", "validate", *files])
    assert alone.exit_code == 1
    assert "invalid reference 'service: s'" in alone.stderr
    merged = CliRunner().invoke(app, ["config", "validate", "--merge", *files])
    assert merged.exit_code == 0, merged.output
    assert merged.stdout == f"{files[0]}, {files[1]}: OK (merged)\n"


def test_merge_errors_located_per_file(app: click.Group, split: dict[str, str]) -> None:
    result = CliRunner().invoke(
        app, ["config", "validate", "--merge", split["services"], split["routes"]]
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"{split['routes']}:7: routes[1].service: "
        "invalid reference 'service: nope' (no such entry in 'services')\n"
    )


def test_merge_json_output(app: click.Group, split: dict[str, str]) -> None:
    ok_files = [split["services"], split["routes-ok"]]
    result = CliRunner().invoke(app, ["config", "validate", "--merge", "--json-output", *ok_files])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["valid"] and report["merged"] and report["files"] == ok_files
    assert report["entities"] == {"services": 1, "routes": 1} and len(report["hash"]) == 32
    assert report["errors"] == []

    result = CliRunner().invoke(
        app, ["config", "validate", "--merge", "--json-output", split["services"], split["routes"]]
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False and "hash" not in report
    assert report["errors"] == [
        {
            "file": split["routes"],
            "path": "routes[1].service",
            "message": "invalid reference 'service: nope' (no such entry in 'services')",
            "line": 7,
        }
    ]


def test_merge_file_level_errors(app: click.Group, split: dict[str, str], tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.yaml")
    result = CliRunner().invoke(app, ["config", "validate", "--merge", split["services"], missing])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{missing}: failed reading declarative configuration: ")
    other = tmp_path / "v21.yaml"
    other.write_text('_format_version: "2.1"\n')
    result = CliRunner().invoke(
        app, ["config", "validate", "--merge", split["services"], str(other)]
    )
    assert result.exit_code == 1
    assert result.stderr == (
        f"{other}:1: _format_version: _format_version '2.1' differs from '3.0' in "
        f"{split['services']}\n"
    )
