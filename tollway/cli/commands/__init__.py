"""One module per command; `register` attaches them to the click groups."""

from __future__ import annotations

import importlib

import click

# (module, group) pairs: group "root" is `tollway`, "config" is `tollway config`, "file"
# is `tollway file`.
COMMANDS: list[tuple[str, str]] = [
    ("start", "root"),
    ("mock", "root"),
    ("migrations", "root"),
    ("validate", "config"),
    ("diff", "config"),
    ("sync", "config"),
    ("apply", "config"),
    ("dump", "config"),
    ("history", "config"),
    ("rollback", "config"),
    ("ping", "config"),
    ("reset", "config"),
    ("file_render", "file"),
    ("file_merge", "file"),
    ("file_patch", "file"),
    ("file_add_tags", "file"),
    ("file_remove_tags", "file"),
    ("file_list_tags", "file"),
    ("file_openapi2tollway", "file"),
    ("route", "root"),
    ("smoke", "root"),
    ("jwt", "root"),
]


def register(root: click.Group, config: click.Group, file: click.Group | None = None) -> None:
    groups = {"root": root, "config": config, "file": file or root}
    for module_name, group in COMMANDS:
        module = importlib.import_module(f"tollway.cli.commands.{module_name}")
        groups[group].add_command(module.command)
