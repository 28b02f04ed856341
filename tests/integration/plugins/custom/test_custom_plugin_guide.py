"""docs/plugin-development.md: every code block is real. Each fenced block is preceded by a
marker comment saying what it is, and is checked against it:

* `<!-- file: PATH -->`    the block is the whole file PATH (the worked example's code);
* `<!-- excerpt: PATH -->` the block is a run of whole lines of PATH;
* `<!-- tree: DIR -->`     a listing whose files exist under DIR, and are all of its files;
* `<!-- conf -->`          a configuration file that loads with the settings loader;
* `<!-- declarative -->`   a declarative config that validates with the example plugin;
* `<!-- error-body -->`    the JSON body Tollway sends for an access-phase exception;
* `<!-- shell -->`         commands naming paths that exist in the repository.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from tollway_header_stamp import HeaderStamp

from tollway import settings as settings_mod
from tollway.config import declarative
from tollway.dataplane import local_reply

ROOT = Path(__file__).resolve().parents[4]
EXAMPLE = ROOT / "examples" / "plugins" / "tollway-header-stamp"
GUIDE = ROOT / "docs" / "plugin-development.md"
BLOCK = re.compile(r"(?:<!-- (?P<kind>[a-z-]+)(?:: (?P<arg>\S+))? -->\n)?"
                   r"```(?P<lang>[a-z]*)\n(?P<body>.*?)^```$", re.S | re.M)


def blocks() -> list[tuple[str | None, str | None, str, int]]:
    text = GUIDE.read_text()
    return [(m["kind"], m["arg"], m["body"], text.count("\n", 0, m.start()) + 1)
            for m in BLOCK.finditer(text)]


def test_every_block_has_a_marker() -> None:
    found = blocks()
    assert len(found) >= 10
    assert [line for kind, _, _, line in found if kind is None] == []


def test_the_example_code_is_in_the_guide_verbatim() -> None:
    shown = {arg for kind, arg, _, _ in blocks() if kind == "file"}
    package = {str(p.relative_to(ROOT)) for p in EXAMPLE.rglob("*")
               if p.suffix in (".py", ".toml")}
    assert package <= shown, "every file of the example is in the guide"


@pytest.mark.parametrize(("kind", "arg", "body", "line"), blocks())
def test_block(kind: str | None, arg: str | None, body: str, line: int,
               tmp_path: Path, header_stamp: type[HeaderStamp]) -> None:
    where = f"docs/plugin-development.md:{line}"
    if kind == "file":
        assert arg is not None
        assert body == (ROOT / arg).read_text(), f"{where} differs from {arg}"
    elif kind == "excerpt":
        assert arg is not None
        assert body in (ROOT / arg).read_text(), f"{where} is not in {arg}"
        assert body.startswith(tuple("abcdefghijklmnopqrstuvwxyz@"))  # whole lines
    elif kind == "tree":
        assert arg is not None
        listed = {"/".join(part.strip() for part in (parent, name)).strip("/")
                  for parent, name in _tree(body)}
        actual = {str(p.relative_to(ROOT / arg)) for p in (ROOT / arg).rglob("*")
                  if p.is_file() and p.suffix in (".py", ".toml")}
        assert listed == actual, where
    elif kind == "conf":
        conf = tmp_path / "tollway.conf"
        conf.write_text(body)
        values = settings_mod.load(conf_path=str(conf), env={}).values
        assert values["plugins"] == "bundled,header-stamp", where
    elif kind == "declarative":
        config = declarative.validate(yaml.safe_load(body))
        (plugin,) = config.entities["plugins"]
        assert plugin["name"] == "header-stamp"
    elif kind == "error-body":
        rendered = local_reply.render_body("An unexpected error occurred", "...",
                                           local_reply.JSON)
        assert body.rstrip("\n") == rendered.decode(), where
        assert json.loads(body)["message"] == "An unexpected error occurred"
    elif kind == "shell":
        for cmd in body.strip().splitlines():
            words = shlex.split(cmd)
            assert words[:2] == ["pip", "install"], where
            assert (ROOT / words[-1]).is_dir(), where
    else:
        pytest.fail(f"{where}: unknown marker {kind!r}")


def _tree(body: str) -> list[tuple[str, str]]:
    """(directory, file) pairs of an indented listing; the first line is the root."""
    out: list[tuple[str, str]] = []
    parents: list[tuple[int, str]] = []
    for raw in body.splitlines()[1:]:
        name = raw.split()[0]
        indent = len(raw) - len(raw.lstrip())
        while parents and parents[-1][0] >= indent:
            parents.pop()
        if name.endswith("/"):
            parents.append((indent, name.rstrip("/")))
        else:
            out.append(("/".join(p for _, p in parents), name))
    return out
