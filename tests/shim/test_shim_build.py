"""The committed shim is what its source builds to, with the pinned minifier, and it fits its size budget."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
WEB_SHIM = ROOT / "web_shim"
BUILT = ROOT / "service" / "static" / "shim.js"
GZIP_BUDGET_BYTES = 2048


def require_node() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        message = "node and npm are needed to rebuild the shim"
        if IN_CI:
            pytest.fail(message + " (CI=true: the build check must run)")
        pytest.skip(message)


@pytest.mark.slow
def test_the_committed_shim_is_the_build_of_its_source(tmp_path: Path) -> None:
    require_node()
    out = tmp_path / "shim.js"
    result = subprocess.run(
        [str(WEB_SHIM / "build"), str(out)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == BUILT.read_bytes(), "service/static/shim.js is stale: run web_shim/build"


def test_the_shim_fits_its_size_budget() -> None:
    gzipped = len(gzip.compress(BUILT.read_bytes(), 9, mtime=0))
    assert gzipped <= GZIP_BUDGET_BYTES, f"shim.js is {gzipped} bytes gzipped, over {GZIP_BUDGET_BYTES}"


def test_the_minifier_is_pinned_by_a_lockfile() -> None:
    package = json.loads((WEB_SHIM / "package.json").read_text())
    lock = json.loads((WEB_SHIM / "package-lock.json").read_text())
    assert package.get("dependencies", {}) == {}  # the shim ships no runtime dependency
    pinned = package["devDependencies"]["esbuild"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), "an exact version, not a range"
    assert lock["packages"]["node_modules/esbuild"]["version"] == pinned
    assert lock["packages"]["node_modules/esbuild"]["integrity"].startswith("sha512-")


@pytest.mark.slow
def test_the_wheel_carries_the_built_shim_and_the_demo_pages(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("calltrail-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "service/static/shim.js",
        "service/static/demo/workstation.html",
        "service/static/demo/crm.html",
    } <= names


def test_every_source_module_is_part_of_the_build() -> None:
    # esbuild bundles what shim.js imports and silently ignores any other file in src/: a module left out
    # would be code that is reviewed but never shipped.
    source = WEB_SHIM / "src"
    reached: set[Path] = set()
    waiting = [source / "shim.js"]
    while waiting:
        module = waiting.pop()
        if module in reached:
            continue
        reached.add(module)
        for specifier in re.findall(r"""\bfrom\s+["'](\.[^"']+)["']""", module.read_text()):
            imported = (module.parent / specifier).resolve()
            assert imported.is_file(), f"{module.name} imports {specifier}, which does not exist"
            waiting.append(imported)
    assert set(source.rglob("*.js")) == reached
