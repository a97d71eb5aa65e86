"""Imports run one way: http -> {protocol, domain, storage} -> config."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parent.parent / "service"

FORBIDDEN = {
    "domain": (
        "service.http",
        "service.storage",
        "service.protocol",
        "service.app",
        "starlette",
        "sqlalchemy",
    ),
    "protocol.py": ("service.http", "service.storage", "service.app", "starlette", "sqlalchemy"),
    "storage": ("service.http", "service.app", "starlette", "service.cli"),
    "config.py": ("service.",),
    "http": ("service.app", "service.cli"),
}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_layer_does_not_import_upward(part: str) -> None:
    target = SERVICE / part
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    assert files
    for path in files:
        for name in imported_modules(path):
            for prefix in FORBIDDEN[part]:
                assert not (name == prefix.rstrip(".") or name.startswith(prefix.rstrip(".") + ".")), (
                    f"{path.relative_to(SERVICE)} imports {name}"
                )
