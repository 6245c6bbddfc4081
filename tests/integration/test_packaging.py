"""The built wheel carries the Lua scripts the Store and the targets load through importlib.resources."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT_DIRS = ("scheduler/store/lua", "scheduler/targets/lua")


def build_wheel(source: Path, outdir: Path) -> subprocess.CompletedProcess:
    """Build with isolation (fetches setuptools>=68 and wheel); without it only where those are at hand."""
    command = [sys.executable, "-m", "build", "--wheel", "--outdir", str(outdir), str(source)]
    built = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if built.returncode != 0:
        built = subprocess.run([*command, "--no-isolation"], capture_output=True, text=True, timeout=600)
    return built


@pytest.mark.timeout(900)
@pytest.mark.slow(reason="builds a wheel in a fresh isolated environment: several seconds, more on a cold cache")
def test_the_wheel_ships_every_lua_script(tmp_path):
    # Build from a copy, so the build leaves no build/ or egg-info behind in the working tree.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "scheduler", source / "scheduler", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    expected = sorted(
        str(path.relative_to(ROOT)) for folder in SCRIPT_DIRS for path in (ROOT / folder).glob("*.lua")
    )
    assert len(expected) >= 6, expected

    built = build_wheel(source, tmp_path / "dist")

    assert built.returncode == 0, f"python -m build failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    [wheel] = (tmp_path / "dist").glob("scheduler-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        shipped = sorted(name for name in names if name.endswith(".lua"))
        assert shipped == expected
        for name in expected:
            assert archive.read(name) == (ROOT / name).read_bytes(), f"{name} differs from the source"
    assert "scheduler/store/state.py" in names and "scheduler/replica/senders.py" in names
