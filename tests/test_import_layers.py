"""The package's layers: no module imports, directly or through others, a module that imports it.

DESIGN.md, "Habits": layers only import downward, and an import placed inside a function to dodge a cycle
is a cycle all the same. So the graph is read from the source with `ast`, every import statement counted
wherever it stands (module level, functions, `if TYPE_CHECKING:` blocks), and then every module is imported,
lowest layer first, in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import ganzoo

PACKAGE_DIR = Path(ganzoo.__file__).parent

#: module name -> {imported module name -> the line numbers of the statements that import it}
ImportGraph = dict[str, dict[str, list[int]]]


def module_files(package_dir: Path) -> dict[str, Path]:
    """Every module of the package under `package_dir`, by dotted name (a package by its own name)."""
    files = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def imported_modules(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The package's modules that one import statement in `module` loads (its own parents aside)."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from the module's package, one level up per extra dot
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[:len(package) - (node.level - 1)]
            base = ".".join([*package, *([node.module] if node.module else [])])
        # `from a import b` loads the module a.b where there is one, else takes the name b from a
        targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
    found = set()
    for target in targets:
        while target and target not in known:  # `import a.b.c` of a name in a.b: the module a.b
            target = target.rpartition(".")[0]
        if target:
            found.add(target)
    return found - {module}


def import_graph(package_dir: Path) -> ImportGraph:
    files = module_files(package_dir)
    graph: ImportGraph = {}
    for module, path in files.items():
        edges: dict[str, list[int]] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in imported_modules(node, module, path.name == "__init__.py", set(files)):
                    edges.setdefault(target, []).append(node.lineno)
        graph[module] = edges
    return graph


def layer_order(graph: ImportGraph) -> list[str]:
    """The modules, each after every module it imports; CycleError names a circle where there is one."""
    return list(TopologicalSorter({module: set(edges) for module, edges in graph.items()}).static_order())


def find_circle(graph: ImportGraph) -> list[str]:
    """A circle of imports, [a, b, ..., a] with each module importing the next; [] where there is none."""
    try:
        layer_order(graph)
    except CycleError as err:
        return err.args[1][::-1]  # graphlib lists it against the import direction
    return []


def describe(cycle: list[str], graph: ImportGraph, package_dir: Path) -> str:
    files = module_files(package_dir)
    return "\n".join(f"  {a} -> {b}  ({files[a].relative_to(package_dir.parent)}, line "
                     f"{', '.join(map(str, graph[a][b]))})" for a, b in zip(cycle, cycle[1:]))


def test_the_package_imports_without_a_circle():
    graph = import_graph(PACKAGE_DIR)
    circle = find_circle(graph)
    assert not circle, ("an import circle (move the shared piece down, or pass the data in):\n"
                        + describe(circle, graph, PACKAGE_DIR))


def test_every_module_imports_on_its_own_lowest_layer_first():
    order = layer_order(import_graph(PACKAGE_DIR))
    assert {"ganzoo", "ganzoo.catalog", "ganzoo.gate_records", "ganzoo.cli"} <= set(order)
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run([sys.executable, "-c", script, *order], capture_output=True, text=True, timeout=300,
                          cwd=PACKAGE_DIR.parent)
    assert done.returncode == 0, done.stderr[-3000:]


# -- the check itself finds what it is there for -------------------------------------------------------------

def write_package(root: Path, modules: dict[str, str]) -> Path:
    package = root / "pkg"
    for name, source in {"__init__": "", **modules}.items():
        path = package / f"{name.replace('.', '/')}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return package


def test_a_circle_closed_inside_a_function_is_found(tmp_path):
    package = write_package(tmp_path, {
        "low": "def lookup():\n    from pkg.high import TABLE  # dodges the circle at import time only\n"
               "    return TABLE\n",
        "high": "from pkg import low\nTABLE = {}\n",
        "other": "import pkg.low\n",
    })
    graph = import_graph(package)
    assert graph["pkg.low"] == {"pkg.high": [2]} and graph["pkg.high"] == {"pkg.low": [1]}
    circle = find_circle(graph)
    assert set(circle) == {"pkg.low", "pkg.high"} and circle[0] == circle[-1]
    assert "pkg.low -> pkg.high  (pkg/low.py, line 2)" in describe(circle, graph, package)
    assert "pkg.high -> pkg.low  (pkg/high.py, line 1)" in describe(circle, graph, package)


def test_relative_and_subpackage_imports_are_resolved(tmp_path):
    package = write_package(tmp_path, {
        "base": "X = 1\n",
        "sub/__init__": "from .leaf import Y\n",
        "sub/leaf": "from ..base import X\nY = X\n",
        "top": "from pkg.sub import leaf, Y\nimport pkg.sub.leaf\nfrom . import base\n",
    })
    graph = import_graph(package)
    assert set(graph["pkg.sub"]) == {"pkg.sub.leaf"}
    assert set(graph["pkg.sub.leaf"]) == {"pkg.base"}
    assert set(graph["pkg.top"]) == {"pkg.sub", "pkg.sub.leaf", "pkg.base"}
    order = layer_order(graph)
    assert order.index("pkg.base") < order.index("pkg.sub.leaf") < order.index("pkg.sub") < order.index("pkg.top")
