"""The runtime import graph of ``relaysim/`` has no cycles (DESIGN.md: dependencies point down only).

The graph is read from the source with :mod:`ast`, so a cycle that happens to import in today's order
is still found. Module ``A`` has an edge to module ``B`` (both in the package) when running ``A`` may
run ``B``'s code or read ``B``'s namespace:

1. Every ``import`` and ``from ... import`` in ``A`` counts, at module level or inside a function,
   method or class body (a function-level import is still a dependency, only a later one), and so
   does ``importlib.import_module`` with a literal name. Imports under ``if TYPE_CHECKING:`` do not
   (they never run); that ``if``'s ``else`` branch does. Relative imports are resolved against
   ``A``'s package.
2. ``import p.q.r`` and ``from p.q.r import name``: an edge to ``p.q.r``.
3. ``from p.q import n``: when ``p/q/n.py`` or ``p/q/n/__init__.py`` exists, Python imports that
   submodule, so the edge goes to ``p.q.n``; otherwise ``n`` is read from ``p.q``'s namespace, so
   the edge goes to ``p.q`` (its ``__init__``).
4. Importing ``p.q.r`` first runs the ``__init__`` of every package on the way (``p.q``): an edge to
   each of them, except to packages that contain ``A`` itself. Python has run, or is running, ``A``'s
   own packages before ``A``'s first line, so ``from relaysim.scenario.model import X`` inside
   ``relaysim.scenario.runner`` (or ``from . import model``) adds no dependency on
   ``relaysim.scenario``; counting it would make every package that re-exports a submodule a cycle.
5. But naming one's own package as the *source of a name* is an edge (rule 3 or ``import p.q``):
   ``from relaysim.scenario import Scenario`` inside ``relaysim.scenario.runner``, or ``import
   relaysim`` to read ``relaysim.__file__``. It reads a namespace that is complete only once that
   ``__init__`` has finished, and that ``__init__`` usually imports the asking module to re-export it;
   whether the name is bound in time depends on the order of lines in ``__init__``. That is exactly
   the kind of cycle this test is for.
6. ``importlib.import_module(f"p.q.{name}")`` (a computed name under a literal package prefix) is an
   edge to every direct submodule of ``p.q``: an over-approximation, fine for the one such call
   (``relaysim.cli`` loading its subcommands). Other computed names are not seen.

A module importing itself (a package ``__init__`` naming its own package) is not an edge.
"""

from __future__ import annotations

import ast
import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "relaysim"


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: Path
    line: int


def find_modules(package_dir: Path) -> dict[str, Module]:
    """Every module under ``package_dir``, by dotted name (the folder's name is the top package)."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        modules[".".join(parts)] = Module(".".join(parts), path, is_package)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_import_module(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name == "import_module" and len(node.args) >= 1


def runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom | ast.Call]:
    """Import statements and ``import_module`` calls anywhere in ``tree``, but not under TYPE_CHECKING."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom) or (
            isinstance(node, ast.Call) and _is_import_module(node)
        ):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _is_inside(package: str, module: str) -> bool:
    return module.startswith(package + ".")


def _targets(importer: Module, imported: str, modules: dict[str, Module]) -> list[str]:
    """Rules 2, 4 and 5: ``imported`` itself, and each package on the way not containing ``importer``."""
    parts = imported.split(".")
    on_the_way = [".".join(parts[:i]) for i in range(1, len(parts))]
    found = [p for p in on_the_way if not _is_inside(p, importer.name)] + [imported]
    return [t for t in found if t in modules and t != importer.name]


def _named_modules(importer: Module, node: ast.AST, modules: dict[str, Module]) -> list[str]:
    """The modules one import names: rule 3 for ``from``, rule 6 for computed ``import_module``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = importer.name.split(".")
            base = base if importer.is_package else base[:-1]
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        named = [f"{source}.{alias.name}" for alias in node.names]
        return [name if name in modules else source for name in named]
    assert isinstance(node, ast.Call)
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return [arg.value]
    if isinstance(arg, ast.JoinedStr) and arg.values:
        head = arg.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str) and head.value.endswith("."):
            package = head.value[:-1]
            return [m for m in modules if m.rsplit(".", 1)[0] == package and m != package]
    return []


def import_edges(package_dir: Path) -> list[Edge]:
    """Every runtime import edge between modules of the package at ``package_dir``."""
    modules = find_modules(package_dir)
    edges = []
    for module in modules.values():
        tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
        for node in runtime_imports(tree):
            for named in _named_modules(module, node, modules):
                for target in _targets(module, named, modules):
                    edges.append(Edge(module.name, target, module.path, node.lineno))
    return edges


def find_cycles(edges: list[Edge]) -> list[list[str]]:
    """The shortest cycle through each module that is on one, each cycle once, as ``[a, b, a]``."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
    cycles: dict[tuple[str, ...], list[str]] = {}
    for start in sorted(graph):
        parent: dict[str, str] = {}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if start in graph.get(node, ()):
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                ring = path[::-1]
                turn = ring.index(min(ring))
                key = tuple(ring[turn:] + ring[:turn])
                cycles.setdefault(key, [*key, key[0]])
                break
            for nxt in sorted(graph.get(node, ())):
                if nxt not in parent and nxt != start:
                    parent[nxt] = node
                    queue.append(nxt)
    return sorted(cycles.values())


def describe(cycles: list[list[str]], edges: list[Edge], root: Path) -> str:
    """Each cycle as ``a -> b -> a``, then where each of its imports is."""
    where: dict[tuple[str, str], Edge] = {}
    for edge in edges:
        where.setdefault((edge.source, edge.target), edge)
    lines = []
    for cycle in cycles:
        lines.append(" -> ".join(cycle))
        for source, target in itertools.pairwise(cycle):
            edge = where[(source, target)]
            lines.append(f"    {edge.path.relative_to(root)}:{edge.line} imports {target}")
    return "\n".join(lines)


# --- the package itself ----------------------------------------------------------------------------


def test_relaysim_runtime_import_graph_has_no_cycles() -> None:
    edges = import_edges(PACKAGE_DIR)
    # The graph is really read: a known import is in it (so an empty graph cannot pass).
    assert any(e.source == "relaysim.dataset.registry" and e.target == "relaysim.resources" for e in edges)
    cycles = find_cycles(edges)
    report = describe(cycles, edges, PACKAGE_DIR.parent)
    print(report)
    assert not cycles, f"{len(cycles)} import cycle(s) in relaysim/:\n{report}"


# --- the graph builder, on small packages made for the purpose -------------------------------------


def _package(root: Path, files: dict[str, str]) -> Path:
    package = root / "pkg"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def _edges(package: Path) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in import_edges(package)}


def test_a_function_level_import_closes_a_cycle_and_is_printed_with_its_line(tmp_path: Path) -> None:
    package = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "from pkg.b import g\n",
        "b.py": "def g():\n    from pkg import a\n    return a\n",
    })
    edges = import_edges(package)
    assert find_cycles(edges) == [["pkg.a", "pkg.b", "pkg.a"]]
    assert describe(find_cycles(edges), edges, tmp_path) == (
        "pkg.a -> pkg.b -> pkg.a\n    pkg/a.py:1 imports pkg.b\n    pkg/b.py:2 imports pkg.a"
    )


def test_type_checking_imports_are_not_edges_but_their_else_branch_is(tmp_path: Path) -> None:
    package = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "import typing\nif typing.TYPE_CHECKING:\n    from pkg.b import B\nelse:\n    import pkg.c\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n",
        "c.py": "",
    })
    assert _edges(package) == {("pkg.a", "pkg.c")}


def test_relative_imports_and_from_package_import_submodule_resolve(tmp_path: Path) -> None:
    package = _package(tmp_path, {
        "__init__.py": "",
        "sub/__init__.py": "from .x import f\n",
        "sub/x.py": "from . import y\nfrom .. import top\nfrom ..other import thing\ndef f(): pass\n",
        "sub/y.py": "",
        "top.py": "import importlib\nimportlib.import_module('pkg.sub.y')\n",
        "other/__init__.py": "thing = 1\n",
    })
    assert _edges(package) == {
        ("pkg.sub", "pkg.sub.x"),
        ("pkg.sub.x", "pkg.sub.y"),
        ("pkg.sub.x", "pkg.top"),
        ("pkg.sub.x", "pkg.other"),
        ("pkg.top", "pkg.sub"),  # the package on the way runs its __init__ (rule 4)
        ("pkg.top", "pkg.sub.y"),
    }


def test_own_package_on_the_way_is_no_edge_but_reading_a_name_from_it_is(tmp_path: Path) -> None:
    package = _package(tmp_path, {
        "__init__.py": "",
        "sub/__init__.py": "from pkg.sub.a import A\nfrom pkg.sub.b import B\n",
        "sub/a.py": "from pkg.sub.b import B\nA = 1\n",  # a sibling, through its own package: fine
        "sub/b.py": "from pkg.sub import A\nB = 2\n",  # a name from its own package's __init__
    })
    edges = import_edges(package)
    assert {(e.source, e.target) for e in edges} == {
        ("pkg.sub", "pkg.sub.a"),
        ("pkg.sub", "pkg.sub.b"),
        ("pkg.sub.a", "pkg.sub.b"),
        ("pkg.sub.b", "pkg.sub"),
    }
    assert find_cycles(edges) == [
        ["pkg.sub", "pkg.sub.a", "pkg.sub.b", "pkg.sub"],
        ["pkg.sub", "pkg.sub.b", "pkg.sub"],
    ]


def test_computed_import_module_under_a_package_reaches_each_submodule(tmp_path: Path) -> None:
    package = _package(tmp_path, {
        "__init__.py": "",
        "cli/__init__.py": "import importlib\n"
        "def load(n):\n    return importlib.import_module(f'pkg.cli.{n}')\n",
        "cli/run.py": "from pkg.cli import load\n",
        "cli/serve.py": "",
    })
    edges = import_edges(package)
    assert {(e.source, e.target) for e in edges} == {
        ("pkg.cli", "pkg.cli.run"),
        ("pkg.cli", "pkg.cli.serve"),
        ("pkg.cli.run", "pkg.cli"),
    }
    assert find_cycles(edges) == [["pkg.cli", "pkg.cli.run", "pkg.cli"]]


@pytest.mark.parametrize("text", ["import pkg\n", "from pkg import VERSION\n"])
def test_importing_the_top_package_by_name_is_an_edge(tmp_path: Path, text: str) -> None:
    package = _package(tmp_path, {"__init__.py": "VERSION = 1\n", "mod.py": text})
    assert _edges(package) == {("pkg.mod", "pkg")}
