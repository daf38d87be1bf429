"""The import graph of `app.py` and `chalicelib`, printed layer by layer, and checked.

    python tools/imports.py            # the layers, each module with what it imports
    python tools/imports.py --check    # only the problems; exit 1 if there is any

The layers, from the top down; a module imports only from its own layer or those below it:

    app        app.py, chalicelib/__main__.py, chalicelib/cli/      (wiring and commands)
    edges      chalicelib/api/ (HTTP), chalicelib/handlers/ (event-source Lambdas),
               chalicelib/emulator/ (Personalize's APIs served on the engine)
    seam       chalicelib/seam/       (role Protocols, the fallback policy, the runtime)
    providers  chalicelib/providers/  (local, personalize)
    engine     chalicelib/engine/     (numpy/scipy recommender)
    shared     every other module of chalicelib (vocabulary, settings, config, formats, filters)

Checked as well: no cycle between modules (imports made inside functions and under
TYPE_CHECKING count too), the two providers never import each other, the `personalize`
provider never imports the engine (its Lambdas load no numpy), and no module reads another
module's private name (`module._name`, `from module import _name`), in tests and benchmarks
included.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "chalicelib"
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("app", ("app", "chalicelib.__main__", "chalicelib.cli")),
    ("edges", ("chalicelib.api", "chalicelib.handlers", "chalicelib.emulator")),
    ("seam", ("chalicelib.seam",)),
    ("providers", ("chalicelib.providers",)),
    ("engine", ("chalicelib.engine",)),
    ("shared", ("chalicelib",)),
]
# (importer prefix, imported prefix, why): edges that no layer rule forbids but the design does.
NEVER = [
    ("chalicelib.providers.personalize", "chalicelib.engine", "the Lambdas load no numpy"),
    ("chalicelib.providers.personalize", "chalicelib.providers.local", "providers stand alone"),
    ("chalicelib.providers.local", "chalicelib.providers.personalize", "providers stand alone"),
]
# Where private names may not be read across modules: the project and its tests and benchmarks.
READERS = ("app.py", "chalicelib", "tests", "bench", "deploy", "tools")


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> int:
    # The longest matching prefix decides: `chalicelib.cli.x` is app, `chalicelib.names` shared.
    best, rank = -1, len(LAYERS)
    for n, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if _within(module, prefix) and len(prefix) > best:
                best, rank = len(prefix), n
    return rank


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> dict[str, Path]:
    found = {"app": ROOT / "app.py"}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        found[module_name(path)] = path
    return found


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `module` imports (a package's `__init__` counts as a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, path.name == "__init__.py")
            names = [f"{base}.{alias.name}" for alias in node.names]
            names = [n if n in known else base for n in names]
        else:
            continue
        for name in names:
            target = name
            while target and target not in known:  # `from a.b import f`: f's module a.b
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = sources()
    return {module: imports_of(module, path, known) for module, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def upward(edges: dict[str, set[str]]) -> Iterator[str]:
    for module, targets in sorted(edges.items()):
        for target in sorted(targets):
            if layer_of(target) < layer_of(module):
                above, below = LAYERS[layer_of(target)][0], LAYERS[layer_of(module)][0]
                yield f"upward import: {module} ({below}) imports {target} ({above})"
            for importer, imported, why in NEVER:
                if _within(module, importer) and _within(target, imported):
                    yield f"forbidden import: {module} imports {target} ({why})"


def _bound_modules(tree: ast.AST, known: set[str]) -> dict[str, str]:
    """Local names bound to project modules: `from chalicelib import aws` binds `aws`."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in known:
                    bound[alias.asname or alias.name] = full
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in known:
                    bound[alias.asname] = alias.name
    return bound


def private_reads() -> Iterator[str]:
    """`module._name` and `from module import _name` where the module is another project
    module (of chalicelib, tests, bench, deploy or tools)."""
    paths = [ROOT / "app.py"]
    for folder in READERS[1:]:
        paths += sorted((ROOT / folder).rglob("*.py"))
    known = {module_name(p) for p in paths}
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        bound = _bound_modules(tree, known)
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in known:
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        name = f"{node.module}.{alias.name}"
                        yield f"private name: {where}:{node.lineno} imports {name}"
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                target = bound[node.value.id]
                yield f"private name: {where}:{node.lineno} reads {target}.{node.attr}"


def problems() -> list[str]:
    edges = graph()
    found = [f"cycle: {' <-> '.join(c)}" for c in cycles(edges)]
    found += list(upward(edges))
    found += list(private_reads())
    return found


def show(edges: dict[str, set[str]]) -> None:
    for rank, (name, _) in enumerate(LAYERS):
        members = sorted(m for m in edges if layer_of(m) == rank)
        print(f"{name} ({len(members)} modules)")
        for module in members:
            inside = sorted(t for t in edges[module] if layer_of(t) == rank)
            below = sorted(t for t in edges[module] if layer_of(t) > rank)
            line = f"  {module}"
            if inside or below:
                line += " -> " + ", ".join(inside + below)
            print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="print only the problems")
    args = parser.parse_args(argv)
    edges = graph()
    if not args.check:
        show(edges)
        print()
    found = problems()
    for problem in found:
        print(problem)
    print(f"{len(edges)} modules, {sum(map(len, edges.values()))} imports: ", end="")
    print(
        "no cycle, no upward import, no private name read"
        if not found
        else f"{len(found)} problem(s)"
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
