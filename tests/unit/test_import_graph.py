"""The layout holds: `python tools/imports.py --check` finds no cycle, no upward import between
the layers (app, edges, seam, providers, engine, shared) and no private name read across
modules; and every module of chalicelib stays short enough to read in one sitting."""

from __future__ import annotations

import subprocess
import sys

from chalicelib.settings import PROJECT_ROOT

MAX_LINES = 400


def test_the_import_graph_has_no_cycle_no_upward_import_and_no_private_read() -> None:
    out = subprocess.run(
        [sys.executable, "tools/imports.py", "--check"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no cycle, no upward import, no private name read" in out.stdout


def test_the_check_finds_a_cycle_and_an_upward_import(tmp_path) -> None:
    """The check is not vacuous: a graph with both problems is refused."""
    code = (
        "import sys; sys.path.insert(0, 'tools'); import imports as g\n"
        "edges = {'chalicelib.engine.a': {'chalicelib.engine.b', 'chalicelib.api.routes'},\n"
        "         'chalicelib.engine.b': {'chalicelib.engine.a'}, 'chalicelib.api.routes': set()}\n"
        "print(g.cycles(edges)); print(list(g.upward(edges)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "['chalicelib.engine.a', 'chalicelib.engine.b']" in out
    assert "upward import: chalicelib.engine.a (engine) imports chalicelib.api.routes" in out


def test_no_module_of_chalicelib_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(PROJECT_ROOT)): n
        for path in (PROJECT_ROOT / "chalicelib").rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long
