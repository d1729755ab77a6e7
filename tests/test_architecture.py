"""The layer map of docs/architecture.md, checked on the code: imports point down.

Every ``import`` / ``from ... import`` in ``src/rasteret`` counts, at module level or
inside a function, ``TYPE_CHECKING`` blocks included: a package may import only
packages of a lower layer (siblings in one layer do not import each other), and the
module-level imports of the whole package form no cycle.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rasteret"

#: Bottom to top; a package may import any package of an earlier layer.
LAYERS: list[set[str]] = [
    {"_version", "_types", "_lazy", "_fork", "_options", "errors"},
    {"_async", "_progress", "_pages"},
    {"tiff", "fetch", "geo"},
    {"index"},
    {"ingest"},
    {"catalog"},
    {"store"},
    {"backend"},
    {"read"},
    {"integrations"},
    {"collection"},
    {"builders"},
    {"samples", "testing"},
    {"demo", "_cli"},
    {"cli"},
]
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module_level_only: bool = False) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every rasteret import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            submodules = [f"{target}.{alias.name}" for alias in node.names]
            submodules = [m for m in submodules if m in _modules()]
            # ``from pkg import module`` imports the module (pkg is already importing)
            targets = submodules or [target]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        found += [(t, node.lineno) for t in targets if t.split(".")[0] == "rasteret"]
    return found


@functools.cache
def _modules() -> frozenset[str]:
    return frozenset(_module_name(p) for p in SRC.rglob("*.py"))


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_package_has_a_layer() -> None:
    packages = {p.name if p.is_dir() else p.stem for p in SRC.iterdir()}
    packages -= {"__init__", "__pycache__", "py.typed"}
    assert packages <= set(RANK), f"add to LAYERS: {sorted(packages - set(RANK))}"


def test_imports_point_down() -> None:
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        source = _package_of(_module_name(path))
        if source is None:  # rasteret/__init__.py re-exports the public names lazily
            continue
        for target, line in _imports(path):
            imported = _package_of(target)
            if imported is None or imported == source:
                continue
            if RANK[imported] >= RANK[source]:
                upward.append(f"{path.relative_to(SRC.parent)}:{line} imports {target}")
    assert not upward, "imports that do not point down:\n" + "\n".join(upward)


def test_no_module_level_import_cycle() -> None:
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for target, _ in _imports(path, module_level_only=True):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    cycles = _cycles(graph)
    assert not cycles, "module-level import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("module", ["rasteret", "rasteret.backend.entrypoint"])
def test_light_imports(module: str) -> None:
    """``import rasteret`` and the xarray entry point (loaded by ``list_engines()`` for
    every xarray user) import neither zarr nor the store nor pyarrow.parquet."""
    code = (
        "import sys, xarray, importlib; "
        f"importlib.import_module({module!r}); "
        "heavy = [m for m in ('zarr', 'rasteret.store', 'pyarrow.parquet', 'obstore', "
        "'rasteret.index', 'pyproj', 'dask.array') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"importing {module} loaded {out}"


def test_engine_discovery_imports_nothing_heavy() -> None:
    """What xarray's ``list_engines()`` loads for this package's entry point."""
    code = (
        "import sys, xarray as xr; from importlib.metadata import entry_points; "
        "before = set(sys.modules); "
        "[e.load() for e in entry_points(group='xarray.backends') if e.name == 'rasteret']; "
        "new = set(sys.modules) - before; "
        "print(','.join(sorted(m for m in new if m.split('.')[0] in "
        "('zarr', 'obstore', 'pyproj', 'shapely') or m.startswith('rasteret.store'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"xarray.backends.list_engines() loaded {out} for rasteret"


def test_package_exports_are_not_shadowed_by_submodules() -> None:
    """A lazily exported name that is also a submodule's name must stay the function
    after the submodule is imported (``from rasteret.geo import warp`` after
    ``import rasteret.geo.warp``)."""
    code = (
        "import importlib, inspect, rasteret\n"
        "bad = []\n"
        "for pkg in ('rasteret', 'rasteret.geo', 'rasteret.read', 'rasteret.store', "
        "'rasteret.backend', 'rasteret.ingest'):\n"
        "    module = importlib.import_module(pkg)\n"
        "    for name in module.__all__:\n"
        "        try:\n"
        "            importlib.import_module(f'{pkg}.{name}')\n"
        "        except ImportError:\n"
        "            continue\n"
        "        if inspect.ismodule(getattr(module, name)):\n"
        "            bad.append(f'{pkg}.{name}')\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"exports shadowed by their submodule: {out}"
