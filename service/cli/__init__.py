"""The `calltrail` command: serve, migrate, sites, keys, CCC apps, and the maintenance commands. Each
group of commands is a module here; importing it adds its commands to the one click group (common.py)."""

from __future__ import annotations

from service.cli import access, ccc, data, integrity, server
from service.cli.common import cli

COMMAND_MODULES = (access, ccc, data, integrity, server)
__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="calltrail")
