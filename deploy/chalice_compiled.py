"""Chalice with bytecode in the Lambda zip:

    .venv/bin/python deploy/chalice_compiled.py package --stage prod out/   # any chalice command

`python -m deploy deploy --stage STAGE` deploys a stage through this (plus what Chalice cannot
set: see deploy/release.py); use that to deploy.

Chalice zips sources only: wheels hold no `.pyc` and Chalice adds none. Lambda's /var/task is
read-only, so every cold container compiles pydantic and chalicelib again, which costs more than
importing them (`bench/cold_start.py` measures both). This runs Chalice's own CLI with one change:
each zip its packagers write gets the compiled bytecode of every module it holds, hash-checked
(the source's hash, not its time stamp, which a zip does not keep exactly), so a stale `.pyc` is
never used. Chalice has no packaging hook, hence the wrap of its three packagers.
"""

from __future__ import annotations

import compileall
import py_compile
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

LAMBDA_ROOT = "/var/task"  # where Lambda unpacks the zip: the path tracebacks show


def compile_tree(root: Path, shown_as: str = LAMBDA_ROOT) -> int:
    """Write hash-checked bytecode next to every module under `root`; returns how many."""
    before = sum(1 for _ in root.rglob("*.pyc"))
    ok = compileall.compile_dir(
        root,
        quiet=2,
        workers=0,
        stripdir=str(root),
        prependdir=shown_as,
        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
    )
    if not ok:
        raise RuntimeError(f"a module under {root} does not compile")
    return sum(1 for _ in root.rglob("*.pyc")) - before


def add_bytecode(zip_path: Path, python_version: str | None = None) -> int:
    """Rewrite `zip_path` with bytecode for each module; returns how many modules were compiled.

    Bytecode is specific to the interpreter's minor version: for another runtime than this
    interpreter's, the zip is left as it is (Lambda would ignore the files).
    """
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if python_version is not None and python_version != here:
        print(f"bytecode skipped: the Lambda runs {python_version}, this is {here}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        with zipfile.ZipFile(zip_path) as source:
            entries = [e for e in source.infolist() if "__pycache__/" not in e.filename]
            source.extractall(tree, members=entries)
        compiled = compile_tree(tree)
        rebuilt = Path(tmp) / "rebuilt.zip"
        with (
            zipfile.ZipFile(zip_path) as source,
            zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as out,
        ):
            for entry in entries:
                out.writestr(entry, source.read(entry))
            for pyc in sorted(tree.rglob("__pycache__/*.pyc")):
                info = zipfile.ZipInfo(pyc.relative_to(tree).as_posix(), (2020, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                out.writestr(info, pyc.read_bytes(), zipfile.ZIP_DEFLATED)
        shutil.move(rebuilt, zip_path)
    return compiled


def _with_bytecode(create: Callable[..., str]) -> Callable[..., str]:
    @wraps(create)
    def create_deployment_package(self: Any, project_dir: str, python_version: str) -> str:
        path = create(self, project_dir, python_version)
        count = add_bytecode(Path(path), python_version)
        self._ui.write(f"Added bytecode for {count} modules.\n")
        return path

    return create_deployment_package


def install() -> None:
    """Make Chalice's packagers add bytecode to every zip they write (idempotent)."""
    from chalice.deploy import packager  # noqa: PLC0415 - a development dependency

    for cls in (
        packager.LambdaDeploymentPackager,
        packager.AppOnlyDeploymentPackager,
        packager.LayerDeploymentPackager,
    ):
        create = cls.create_deployment_package
        if not getattr(create, "adds_bytecode", False):
            wrapped = _with_bytecode(create)
            wrapped.adds_bytecode = True  # type: ignore[attr-defined]
            cls.create_deployment_package = wrapped  # type: ignore[method-assign]


def main() -> None:
    install()
    from chalice.cli import main as chalice_main  # noqa: PLC0415

    sys.argv[0] = "chalice"
    # Chalice's main exits itself on most paths but returns an exit code on some (no region).
    raise SystemExit(chalice_main())


if __name__ == "__main__":
    main()
