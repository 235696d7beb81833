"""The import structure of the package: no import circles, and the rule of
``microcrad._lib`` (its docstring) kept: only ``_lib`` touches ctypes and calls the
library; the other modules call the functions ``_lib`` names."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "microcrad"

# _lib's modules, in the only order in which they may import each other.
LIB_ORDER = ["_loading", "_errors", "_arrays", "_nodes", "_graphs"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path) -> set[str]:
    """Every microcrad module ``path`` imports, anywhere in it (function bodies and
    ``if TYPE_CHECKING:`` blocks included: a circle there is still a circle)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from microcrad import _lib" imports the submodule microcrad._lib.
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in MODULES)
    # A package's __init__ runs before any of its submodules; it is not an edge.
    return found - {"microcrad"}


def test_the_package_has_no_import_circles() -> None:
    edges = {name: imported_modules(path) for name, path in MODULES.items()}
    assert edges["microcrad.engine"], "the import parser found no edges"
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:  # the package is small: recursion is fine
        state[name] = "open"
        for target in sorted(edges[name]):
            if state.get(target) == "open":
                circle = trail[trail.index(target) :] + [target]
                pytest.fail("import circle: " + " -> ".join(circle))
            if target not in state:
                visit(target, trail + [target])
        state[name] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_imports_on_its_own(name: str) -> None:
    # A fresh interpreter per module: an import order that only works after another
    # module has been imported first would fail here.
    result = subprocess.run(
        [sys.executable, "-c", f"import {name}"],
        cwd=PACKAGE.parent,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_lib_modules_are_few_and_import_each_other_in_order() -> None:
    lib = sorted(path.stem for path in (PACKAGE / "_lib").glob("*.py"))
    assert len(lib) <= 6, lib
    assert sorted(LIB_ORDER + ["__init__"]) == lib
    for index, stem in enumerate(LIB_ORDER):
        imported = imported_modules(PACKAGE / "_lib" / f"{stem}.py")
        allowed = {f"microcrad._lib.{earlier}" for earlier in LIB_ORDER[:index]}
        assert imported <= allowed, (stem, imported - allowed)


@pytest.mark.parametrize(
    "name", sorted(name for name in MODULES if not name.startswith("microcrad._lib"))
)
def test_only_lib_calls_the_library(name: str) -> None:
    tree = ast.parse(MODULES[name].read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert all(alias.name != "ctypes" for alias in node.names), name
        if isinstance(node, ast.ImportFrom) and node.module:
            assert node.module != "ctypes", name
            # _lib's own modules are its inside: other modules use what _lib names.
            assert not node.module.startswith("microcrad._lib."), (name, node.module)
            if node.module == "microcrad._lib":
                assert all(alias.name != "c" for alias in node.names), name
        # _lib.c.<function>: a direct library call.
        if isinstance(node, ast.Attribute) and node.attr == "c":
            assert not (isinstance(node.value, ast.Name) and node.value.id == "_lib"), (
                f"{name} calls the library directly (line {node.lineno})"
            )
