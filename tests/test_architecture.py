"""The architecture as ARCHITECTURE.md draws it, checked on every import of the code.

Arrows: ``api → evidence, anchor → verifier``. Inside ``api/``: ``service/`` is the pipeline's one
home; ``web/`` and ``cli/`` call only it (never ``evidence`` or ``anchor`` themselves), and the
service knows neither of them. No module reaches back up the arrows, and no two modules import each
other, directly or round a longer loop. Imports under ``if TYPE_CHECKING:`` are annotations only
and do not count; imports inside functions do.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("verifier", "evidence", "anchor", "api")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts and "node_modules" not in path.parts:
                found[_module_name(path)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST, module: str) -> Iterator[str]:
    """Every module name imported at run time (top level or in a function)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, ast.Import):
                yield from (alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                assert child.level == 0, f"{module}: relative import (the project imports absolutely)"
                base = child.module or ""
                for alias in child.names:
                    # `from api.service import crud` imports the module api.service.crud.
                    yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
            stack.append(child)


def _ours(name: str) -> str | None:
    """The module of this project that ``name`` is, or is inside; None for third-party names."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


GRAPH = {module: {m for name in _runtime_imports(ast.parse(path.read_text(encoding="utf-8")), module)
                  if (m := _ours(name)) and m != module}
         for module, path in MODULES.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "api" and len(parts) > 1 else parts[0]


#: Layer -> the layers it may import. Anything else is an arrow pointing the wrong way.
ALLOWED = {
    "verifier": {"verifier"},
    "evidence": {"evidence", "verifier"},
    "anchor": {"anchor", "verifier"},
    "api": {"api"},
    "api.service": {"api.service", "evidence", "anchor", "verifier"},
    "api.web": {"api.web", "api.service", "verifier"},
    "api.cli": {"api.cli", "api.service", "verifier"},
}
#: `tiezheng serve` is a CLI command that runs the web app: the one arrow from cli/ into web/.
SERVE_ENTRY = {("api.cli.admin", "api.web.main"), ("api.cli.admin", "api.web.serve_workers")}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_import_follows_the_arrows(module: str) -> None:
    wrong = sorted(target for target in GRAPH[module]
                   if _layer(target) not in ALLOWED[_layer(module)] and (module, target) not in SERVE_ENTRY)
    assert wrong == [], f"{module} imports {wrong}: see ARCHITECTURE.md"


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components: every component must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
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
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert cycles == [], f"modules that import each other: {cycles}"


def test_the_three_rooms_exist_and_api_has_no_loose_modules() -> None:
    """Everything in api/ lives in one of its three rooms."""
    loose = sorted(p.name for p in (ROOT / "api").glob("*.py") if p.name != "__init__.py")
    assert loose == []
    assert {p.name for p in (ROOT / "api").iterdir() if p.is_dir() and not p.name.startswith("__")} == \
        {"service", "web", "cli"}


def test_only_the_service_touches_the_sealing_store() -> None:
    users = sorted(m for m, targets in GRAPH.items() if "anchor.store" in targets and m.startswith("api."))
    assert users and all(m.startswith("api.service.") for m in users), users
