"""Imports run one way: the app and CLI -> HTTP-facing modules -> ingest / projection / reports / admin ->
domain and storage -> config, with no circle anywhere. Read from the code's own imports, with `from service
import telemetry` counted as an import of the module `service.telemetry`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICE = ROOT / "service"

TOP = ("service.app", "service.cli", "service.demo", "service.__main__")
# For each part, the only parts of service it may import (besides itself).
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "service.config": (),
    "service.domain": (),
    "service.storage": ("service.config", "service.domain", "service.telemetry"),
    "service.telemetry": (),
    "service.formats": (),
    "service.logs": ("service.config",),
    "service.ingest.protocol": ("service.domain",),
    # The contract declares; it may name the domain's vocabulary and the wire protocol's limits, no more.
    "service.contract.models": ("service.domain", "service.ingest.protocol"),
    "service.contract.queries": ("service.domain",),
    # The concerns: projection sits on storage; administration may rebuild (projection) and check stored
    # events against the wire protocol; neither reaches into ingestion's writers or the reports.
    "service.projection": ("service.config", "service.domain", "service.storage", "service.telemetry"),
    "service.admin": (
        "service.config",
        "service.domain",
        "service.storage",
        "service.projection",
        "service.ingest.protocol",
        "service.formats",
        # The admin operations (admin/access.py) register and remove CCC apps for the CLI and the API.
        "service.ccc",
    ),
    # CCC call records: apps, credentials, the raw log. The CLI and the HTTP-facing endpoints
    # (service/http/ccc.py) use it; it uses only what is below it, never HTTP.
    "service.ccc": (
        "service.config",
        "service.domain",
        "service.storage",
        "service.telemetry",
    ),
    # CCC's API through its SDK: pure logic below it, no storage (the caller stores the pages), no web server.
    # The adapter, the pacing and the pull import each other (pull -> pacing -> sdk) and the domain only.
    "service.ccc.sdk": ("service.domain",),
    "service.ccc.pacing": ("service.domain", "service.ccc.sdk"),
    "service.ccc.pull": ("service.domain", "service.ccc.sdk", "service.ccc.pacing"),
}
NO_DATABASE_NO_WEB = ("sqlalchemy", "starlette", "asyncpg", "psycopg", "uvicorn")
THIRD_PARTY_BANNED = {
    "service.domain": NO_DATABASE_NO_WEB,
    "service.ccc.sdk": NO_DATABASE_NO_WEB,
    "service.ccc.pacing": NO_DATABASE_NO_WEB,
    "service.ccc.pull": NO_DATABASE_NO_WEB,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SERVICE.rglob("*.py"))}


def imports_of(path: Path) -> set[str]:
    """Every module it imports, of service or not; `from package import module` names the module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES}
    return names


def within(name: str, part: str) -> bool:
    return name == part or name.startswith(part + ".")


GRAPH = {
    module: {n for n in imports_of(path) if n in MODULES and n != module} for module, path in MODULES.items()
}


@pytest.mark.parametrize("part", sorted(MAY_IMPORT))
def test_a_base_part_imports_only_what_is_below_it(part: str) -> None:
    members = [m for m in MODULES if within(m, part)]
    assert members, part
    for module in members:
        for name in GRAPH[module]:
            if within(name, part) or name == "service":
                continue
            assert any(within(name, allowed) for allowed in MAY_IMPORT[part]), f"{module} imports {name}"
        for name in imports_of(MODULES[module]):
            for banned in THIRD_PARTY_BANNED.get(part, ()):
                assert not within(name, banned), f"{module} imports {name}"


def http_facing() -> set[str]:
    """Modules that speak HTTP: those in service/http/ or importing Starlette, and whatever imports them."""
    facing = {
        m
        for m in MODULES
        if within(m, "service.http") or any(within(n, "starlette") for n in imports_of(MODULES[m]))
    }
    while grown := {m for m in MODULES if m not in facing and GRAPH[m] & facing}:
        facing |= grown
    return facing


def test_nothing_below_http_imports_http() -> None:
    facing = http_facing()
    below = set(MODULES) - facing
    # The parts that must stay usable without a web server: the CLI, tools and tests run them directly.
    for part in ("service.domain", "service.storage", "service.projection", "service.admin", "service.ccc"):
        assert all(m in below for m in MODULES if within(m, part)), part
    assert {"service.ingest.writer", "service.ingest.protocol", "service.reports.records"} <= below
    assert {"service.ingest.endpoint", "service.reports.sessions", "service.app"} <= facing
    # Every module that must stay usable without a web server, named: a new import of Starlette (or of
    # something that speaks HTTP) into any of them fails here.
    expected_below = {
        m
        for m in MODULES
        if any(
            within(m, part)
            for part in (
                "service.domain",
                "service.storage",
                "service.projection",
                "service.admin",
                "service.ccc",
                "service.config",
                "service.telemetry",
                "service.formats",
                "service.logs",
            )
        )
    }
    expected_below |= {
        "service.ingest.protocol",
        "service.ingest.writer",
        "service.ingest.loop_writer",
        "service.ingest.idle",
        "service.reports.records",
        "service.reports.filters",
        "service.ccc.sdk",
        "service.ccc.pacing",
        "service.ccc.pull",
    }
    assert expected_below <= below, sorted(expected_below - below)


def test_no_relative_imports() -> None:
    # The module graph above is read from absolute imports; a relative one would hide an arrow.
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            assert not (isinstance(node, ast.ImportFrom) and node.level), f"{module} imports relatively"


def test_only_the_command_line_imports_the_top() -> None:
    for module, names in GRAPH.items():
        for name in names:
            if any(within(name, top) for top in TOP):
                assert within(module, "service.cli") or module in ("service.__main__", "service.demo"), (
                    f"{module} imports {name}"
                )


def test_there_is_no_import_circle() -> None:
    # Tarjan's strongly connected components over the module graph: any with two or more is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for name in GRAPH[module]:
            if name not in index:
                visit(name)
                low[module] = min(low[module], low[name])
            elif name in on_stack:
                low[module] = min(low[module], index[name])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert circles == []


def test_packages_by_concern_exist_and_say_what_they_hold() -> None:
    packages = ("ingest", "projection", "reports", "admin", "ccc", "contract", "domain", "storage", "http")
    for package in packages:
        init = SERVICE / package / "__init__.py"
        assert init.exists(), package
        assert ast.get_docstring(ast.parse(init.read_text())), (
            f"service/{package}/__init__.py has no docstring"
        )
