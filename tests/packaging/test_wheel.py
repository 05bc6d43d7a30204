"""The distribution owns its names: the wheel holds one top-level package,
``leadsla``, with the repository's folders mapped under it, and nothing in the
code imports the bare folder names."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-w", str(out), str(ROOT)],
        check=True, capture_output=True, cwd=build,
    )
    (path,) = out.glob("leadsla-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_has_one_top_level_package(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"leadsla"}
    top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert wheel.read(top_level).decode().split() == ["leadsla"]


def test_wheel_maps_the_folders_and_ships_the_example(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for module in ("leadsla/models/clock.py", "leadsla/streams/cli.py", "leadsla/dashboards/render.py",
                   "leadsla/streams/policies.example.yaml", "leadsla/__main__.py",
                   # the team screen's page, served from the package (streams.screen)
                   "leadsla/streams/static/screen.html", "leadsla/streams/static/screen.css",
                   "leadsla/streams/static/screen.js"):
        assert module in names, module
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "leadsla = leadsla.streams.cli:main" in wheel.read(entry).decode()


def test_no_module_imports_the_bare_folder_names() -> None:
    bare = re.compile(r"^\s*(from|import)\s+(models|streams|dashboards)\b", re.M)
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("leadsla", "models", "streams", "dashboards", "tests", "bench")
        for path in (ROOT / folder).rglob("*.py")
        if bare.search(path.read_text())
    ]
    assert offenders == []


def test_version_flag() -> None:
    out = subprocess.run([sys.executable, "-m", "leadsla", "--version"], check=True, capture_output=True, text=True)
    assert re.fullmatch(r"leadsla \d+\.\d+\.\d+\S*\n", out.stdout)


def test_the_checkout_runs_without_any_install(tmp_path: Path) -> None:
    """python -m leadsla in the repository's folder (which puts ./leadsla
    first on sys.path) finds the package's parts in the sibling folders, even
    where leadsla is installed normally rather than in development mode."""
    code = ("import sys; sys.path[:] = [p for p in sys.path if 'site-packages' not in p] + "
            "[p for p in sys.path if 'site-packages' in p and '__editable__' not in p]; "
            "import importlib.abc, sys; sys.meta_path[:] = [f for f in sys.meta_path if 'Editable' not in type(f).__name__]; "
            "import leadsla.streams.cli as cli; print(cli.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    assert out.stdout.strip() == str(ROOT / "streams" / "cli.py")
