"""The package's layers (docs/architecture.md): each module imports only from the
layers below it and from its own layer's package, and no two modules import each
other, directly or around a circle. Imports inside functions count too."""
from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: the layers, lowest first; a module may import from a lower layer, or from its
#: own package (pci.core from pci.core, ...), never from a higher or sibling one
LAYERS = [
    ("pci.core",),
    ("pci.land", "pci.read"),
    ("pci.publish", "pci.score"),
    ("pci.orchestrate",),
    ("pci.cli", "pci"),  # the command line; pci/__init__ holds only the version
    ("pci.__main__",),
    ("tools", "dags"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> dict[str, Path]:
    files = [*ROOT.glob("pci/**/*.py"), *ROOT.glob("tools/**/*.py"), *ROOT.glob("dags/*.py")]
    return {module_name(p): p for p in files if "__pycache__" not in p.parts}


def imports(path: Path, known: set[str]) -> set[str]:
    """The project's modules ``path`` imports (the longest known prefix of each name)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            for n in range(len(parts), 0, -1):
                if ".".join(parts[:n]) in known:
                    out.add(".".join(parts[:n]))
                    break
    return out


def package_of(module: str) -> str:
    for layer in LAYERS:
        for package in sorted(layer, key=len, reverse=True):
            if module == package or module.startswith(package + "."):
                return package
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def rank(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    src = sources()
    known = set(src)
    return {m: {i for i in imports(p, known) if i != m} for m, p in src.items()}


def test_every_import_points_down_or_inside_its_package(graph):
    wrong = []
    for module, targets in graph.items():
        here = package_of(module)
        for target in targets:
            there = package_of(target)
            if here == "pci" or target == "pci":  # the package's own __init__ (its version)
                continue
            if there != here and rank(there) >= rank(here):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(sorted(wrong))


def test_no_import_circle(graph):
    # a package's __init__ that re-exports its modules is not a circle with them
    edges = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    try:
        list(graphlib.TopologicalSorter(edges).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import circle: {' -> '.join(exc.args[1])}")


def test_a_circle_would_be_found():
    """The check above can fail: a circle of two modules is reported."""
    with pytest.raises(graphlib.CycleError):
        list(graphlib.TopologicalSorter({"a": {"b"}, "b": {"a"}}).static_order())


def test_no_module_is_a_warehouse_of_many_ideas():
    """No module of the product or the tools over ~400 lines."""
    long = {m: n for m, p in sources().items()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 420}
    assert not long, long


def test_only_the_warehouse_modules_open_duckdb_files():
    """The engine seam: outside pci.core (and the tools), no module connects to DuckDB itself."""
    offenders = []
    for module, path in sources().items():
        if package_of(module) in ("pci.core", "tools", "dags"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "connect" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "duckdb"):
                offenders.append(f"{module}:{node.lineno}")
    assert not offenders, offenders
