"""The layer rule of the README's Layout, read from the code's own imports: every module imports
only from layers below its own (or from its own folder), and no modules import each other in a
circle. Imports under TYPE_CHECKING and inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "scheduler"

# The README's table, bottom first: a module's unit is its folder under scheduler/, or its file.
LAYERS = [
    {"__init__", "errors", "durations", "logs", "backoff", "keys", "urls", "consumer"},
    {"clock", "settings"},
    {"table"},
    {"plan", "targets"},
    {"store", "acl"},
    {"lease", "tenants"},
    {"metrics"},
    {"replica"},
    {"cli"},
    {"__main__"},
]
LAYER_OF = {unit: number for number, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> set[str]:
    """Every scheduler module ``path`` imports: ``from scheduler.x import y`` names scheduler.x.y
    when that is a module of its own, else scheduler.x."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "scheduler"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "scheduler":
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
    return found


MODULES = {module_name(path) for path in PACKAGE.rglob("*.py")}
GRAPH = {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}


def test_every_unit_of_the_package_has_a_layer():
    assert {unit_of(module) for module in MODULES} <= LAYER_OF.keys()


def test_every_import_runs_to_a_lower_layer_or_stays_in_its_own_folder():
    upward = sorted(
        (module, imported) for module, imports in GRAPH.items() for imported in imports
        if unit_of(imported) != unit_of(module) and LAYER_OF[unit_of(imported)] >= LAYER_OF[unit_of(module)]
    )
    assert upward == [], "imports that do not run down a layer (README, Layout)"


def test_no_modules_import_each_other_in_a_circle():
    circles = []
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(GRAPH.get(module, ())):
            if imported == module or imported not in GRAPH:
                continue
            if state.get(imported) == "open":
                circles.append(trail[trail.index(imported):] + [imported])
            elif imported not in state:
                visit(imported, [*trail, imported])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert circles == []
