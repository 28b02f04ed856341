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
