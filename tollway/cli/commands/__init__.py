"""One module per command; `register` attaches them to the click groups."""

from __future__ import annotations

import importlib

import click

# (module, group) pairs: group "root" is `tollway`, "config" is `tollway config`.
COMMANDS: list[tuple[str, str]] = [
    ("start", "root"),
    ("mock", "root"),
    ("validate", "config"),
]


def register(root: click.Group, config: click.Group) -> None:
    groups = {"root": root, "config": config}
    for module_name, group in COMMANDS:
        module = importlib.import_module(f"tollway.cli.commands.{module_name}")
        groups[group].add_command(module.command)
