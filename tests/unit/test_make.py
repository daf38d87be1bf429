"""The Makefile's first contact: a Python older than 3.11 is refused in one line before any venv
or pip, a .venv made by another Python is rebuilt, and `make clean` keeps .venv."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.settings import PROJECT_ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The files make reads, in a scratch project."""
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt", "tools/venv.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    return tmp_path


def _make(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=project, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _fake_venv(project: Path, version: str) -> Path:
    venv = project / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "pyvenv.cfg").write_text(f"home = /usr/bin\nversion = {version}\n")
    return venv


def test_an_old_python_is_refused_before_a_venv_is_made(project: Path) -> None:
    old = project / "python3.9"
    old.write_text(
        "#!/bin/sh\n"
        f'exec {sys.executable} -c "import runpy, sys; sys.version_info = (3, 9, 18); '
        'sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name=\'__main__\')" "$@"\n'
    )
    old.chmod(0o755)
    done = _make(project, f"PYTHON={old}", "run")
    assert done.returncode != 0
    assert "this project needs Python 3.11 or newer" in done.stderr
    assert "is 3.9: run make with PYTHON=python3.11 (or newer)" in done.stderr
    assert not (project / ".venv").exists()


def test_a_venv_made_by_another_python_is_removed_to_be_rebuilt(project: Path) -> None:
    venv = _fake_venv(project, "3.9.2")
    done = subprocess.run(
        [sys.executable, "tools/venv.py", "check", ".venv"],
        cwd=project, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout == ""  # nothing fatal
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert done.stderr == f"rebuilding .venv with Python {here}: it was made by Python 3.9\n"
    assert not venv.exists()


def test_a_venv_of_this_python_is_kept(project: Path) -> None:
    venv = _fake_venv(project, f"{sys.version_info[0]}.{sys.version_info[1]}.0")
    done = _make(project, "-n", "run")
    assert "rebuilding" not in done.stderr
    assert venv.exists()
    assert "--port 8000" in done.stdout
    assert "--port 8123" in _make(project, "-n", "run", "PORT=8123").stdout


def test_clean_keeps_the_venv_and_clean_all_removes_it(project: Path) -> None:
    venv = _fake_venv(project, "3.0.0")  # even a stale one: clean does not look at it
    (project / ".data" / "models").mkdir(parents=True)
    assert _make(project, "clean").returncode == 0
    assert venv.exists() and not (project / ".data").exists()
    assert _make(project, "clean-all").returncode == 0
    assert not venv.exists()
