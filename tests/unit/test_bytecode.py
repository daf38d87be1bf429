"""deploy/chalice_compiled.py: the Lambda zip gets bytecode Python uses, and never stale."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deploy.chalice_compiled import add_bytecode

HERE = f"python{sys.version_info.major}.{sys.version_info.minor}"


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def _import(task: Path, module: str) -> tuple[str, str]:
    """Import `module` as a read-only Lambda would (no bytecode written); stdout and -v trace."""
    env = {**os.environ, "PYTHONPATH": str(task), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        [sys.executable, "-v", "-c", f"import {module}; print({module}.X)"],
        cwd=task,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip(), out.stderr


def _unzip(zip_path: Path) -> Path:
    task = zip_path.parent / "task"
    zipfile.ZipFile(zip_path).extractall(task)
    return task


def test_every_module_gets_bytecode_that_python_uses(tmp_path: Path) -> None:
    zip_path = _zip(tmp_path / "lambda.zip", {"app.py": "X = 1\n", "lib/m.py": "X = 2\n"})
    assert add_bytecode(zip_path, HERE) == 2
    names = zipfile.ZipFile(zip_path).namelist()
    tag = sys.implementation.cache_tag
    assert {
        "app.py",
        "lib/m.py",
        f"__pycache__/app.{tag}.pyc",
        f"lib/__pycache__/m.{tag}.pyc",
    } <= set(names)
    value, trace = _import(_unzip(zip_path), "lib.m")
    assert value == "2"
    assert f"code object from '{tmp_path / 'task' / 'lib' / '__pycache__'}" in trace


def test_a_changed_source_is_compiled_again_not_served_stale(tmp_path: Path) -> None:
    zip_path = _zip(tmp_path / "lambda.zip", {"m.py": "X = 1\n"})
    add_bytecode(zip_path, HERE)
    task = _unzip(zip_path)
    (task / "m.py").write_text("X = 22\n")
    value, trace = _import(task, "m")
    assert value == "22"
    assert f"code object from {tmp_path / 'task' / 'm.py'}" in trace


def test_running_it_twice_keeps_one_copy_of_each_file(tmp_path: Path) -> None:
    zip_path = _zip(tmp_path / "lambda.zip", {"m.py": "X = 1\n"})
    add_bytecode(zip_path, HERE)
    add_bytecode(zip_path, HERE)
    names = zipfile.ZipFile(zip_path).namelist()
    assert len(names) == len(set(names)) == 2


def test_another_runtime_leaves_the_zip_alone(tmp_path: Path) -> None:
    zip_path = _zip(tmp_path / "lambda.zip", {"m.py": "X = 1\n"})
    before = zip_path.read_bytes()
    assert add_bytecode(zip_path, "python3.99") == 0
    assert zip_path.read_bytes() == before


def test_a_module_that_does_not_compile_stops_the_deploy(tmp_path: Path) -> None:
    zip_path = _zip(tmp_path / "lambda.zip", {"m.py": "def broken(:\n"})
    with pytest.raises(RuntimeError, match="does not compile"):
        add_bytecode(zip_path, HERE)
