"""The core reads as layers: no module imports one above it, and no two modules import each
other (directly or round a circle), counting imports inside functions too, which is where
upward imports used to hide. See docs/architecture.md for the picture."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2]
#: source folders and the package names they are installed as
SOURCES = {"agentsim": ROOT / "agentsim", "agentsim.backends": ROOT / "backends", "agentsim.tui": ROOT / "tui"}

#: layers, lowest first: a module may import its own layer's modules and those below
LAYERS: list[tuple[str, ...]] = [
    # leaves: import nothing of agentsim's above them
    ("agentsim.errors", "agentsim.precision", "agentsim.values", "agentsim.paths", "agentsim.versions",
     "agentsim.hashing", "agentsim.registry", "agentsim.expr", "agentsim.limits", "agentsim.answers",
     "agentsim.gbnf", "agentsim.grammar", "agentsim.tools", "agentsim.console", "agentsim.quant", "agentsim.result"),
    # data sources, scenarios, models, the device and energy
    ("agentsim.datasets", "agentsim.scenario", "agentsim.hardware", "agentsim.models", "agentsim.measure",
     "agentsim.lab"),
    ("agentsim.store", "agentsim.integrity", "agentsim.fidelity_tables", "agentsim.migrations"),
    ("agentsim.backends",),
    ("agentsim.engine", "agentsim.fidelity"),
    ("agentsim.launch", "agentsim.distributed", "agentsim.casting", "agentsim.serve", "agentsim.agents",
     "agentsim.importers"),
    ("agentsim.analysis", "agentsim.report", "agentsim.render"),
    ("agentsim.api", "agentsim.demo"),
    ("agentsim.tui",),
    ("agentsim.cli",),
]


def _module_name(pkg: str, root: Path, path: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([pkg, *parts])


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg, root in SOURCES.items():
        for path in root.rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            name = _module_name(pkg, root, path)
            if pkg == "agentsim" and name.startswith(("agentsim.backends", "agentsim.tui")):
                continue
            out[name] = path
    return out


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(modules: dict[str, Path]) -> nx.DiGraph:
    """module -> agentsim module it imports (at any depth in the file), named as precisely as
    the import names it: ``from agentsim.scenario import X`` is an edge to the package."""
    g = nx.DiGraph()
    for name, path in modules.items():
        g.add_node(name)
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        typing_only = {id(n) for n in ast.walk(tree) if isinstance(n, ast.If) and _is_type_checking(n.test)
                       for b in n.body for n in ast.walk(b)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue  # ``if TYPE_CHECKING:`` imports are for the type checker, not run
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, node, is_package)
                # "from pkg import sub" names the submodule when there is one
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
                if base == "agentsim":
                    # the root's names: lazy exports map to their module; __version__ is no import
                    exports = _root_exports()
                    targets = [f"agentsim.{a.name}" if f"agentsim.{a.name}" in modules else exports.get(a.name, "")
                               for a in node.names]
            for t in targets:
                if not t.startswith("agentsim"):
                    continue
                while t not in modules and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t in modules and t != name:
                    g.add_edge(name, t, line=getattr(node, "lineno", 0))
    return g


def _layer(module: str) -> int:
    if module == "agentsim":
        return len(LAYERS)  # the package's lazy public API (PEP 562): above everything it exports
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    if rank is None:
        pytest.fail(f"{module} is in no layer: add it to LAYERS in {__file__} (and docs/architecture.md)")
    return rank


def _root_exports() -> dict[str, str]:
    """``agentsim/__init__.py``'s lazy exports: ``from agentsim import simulate`` imports agentsim.api."""
    tree = ast.parse((ROOT / "agentsim" / "__init__.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_EXPORTS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("agentsim/__init__.py has no _EXPORTS")


GRAPH = _imports(_modules())


def test_every_module_has_a_layer():
    for module in GRAPH.nodes:
        _layer(module)


def test_no_upward_imports():
    upward = []
    for a, b, data in GRAPH.edges(data=True):
        if _layer(b) > _layer(a):
            upward.append(f"{a} (line {data['line']}) imports {b}, a layer above it")
    assert not upward, "\n".join(upward)


def test_no_circles():
    cycles = list(nx.simple_cycles(GRAPH))
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c + [c[0]]) for c in cycles[:20])


def test_nothing_imports_the_cli():
    importers = sorted(a for a, b in GRAPH.edges if b.startswith("agentsim.cli") and not a.startswith("agentsim.cli"))
    assert not importers, f"only the CLI may import the CLI: {importers}"


def test_the_check_can_fail():
    """The graph sees imports inside functions, and an upward one would be caught."""
    assert GRAPH.has_edge("agentsim.launch", "agentsim.engine")
    assert _layer("agentsim.engine") > _layer("agentsim.store")
    g = _imports({"agentsim.store": ROOT / "agentsim" / "store.py", "agentsim.engine": ROOT / "agentsim" / "engine.py"})
    assert g.has_edge("agentsim.engine", "agentsim.store")


def test_no_source_file_over_700_lines():
    long = [f"{p.relative_to(ROOT)} ({n} lines)" for p in _modules().values()
            if (n := len(p.read_text().splitlines())) > 700]
    assert not long, f"split these (one concept per file): {long}"
