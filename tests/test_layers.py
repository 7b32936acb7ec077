"""The shape of the code, checked: engine/ never imports textual or docker (or our UI and
sandboxes), containers/ never imports textual, and the engine's layers point one way
(import-linter, on the real import graph); no import circle at run time in engine/,
containers/ or tui/ (a graph built here from the source with `ast`); ruff clean on the
code and the tests; mypy clean on engine/; and importing the engine loads neither textual
nor docker."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "containers", "tui")


def _tool(name: str) -> str:
    exe = shutil.which(name, path=str(Path(sys.executable).parent))
    assert exe, f"{name} is a dev dependency (pip install -e '.[dev]')"
    return exe


def test_import_linter_contracts_hold():
    r = subprocess.run([_tool("lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 kept, 0 broken" in r.stdout, r.stdout


def test_ruff_is_clean():
    r = subprocess.run([_tool("ruff"), "check", "--no-cache", *PACKAGES, "tests"], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_mypy_is_clean_on_the_engine():
    # The files come from pyproject ([tool.mypy] files = ["engine"]); no cache left behind.
    r = subprocess.run([_tool("mypy"), "--no-incremental", "--cache-dir", "/dev/null"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success: no issues found" in r.stdout


def test_headless_run_never_loads_textual_or_docker():
    code = (
        "import sys, tui.cli, engine.world, engine.headless;"
        "print(sorted(m for m in ('textual', 'docker') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"


def test_a_world_file_is_checked_without_loading_a_brain():
    """The config sits below the brains: it checks brain names and parameters from
    engine.brain_params, and refuses a bad one, with no brain module loaded."""
    code = (
        "import sys\n"
        "from engine.config import ConfigError, parse_world\n"
        "parse_world({'agents': [{'brain': 'boltzmann', 'params': {'when_broke': 'sleep'}}]})\n"
        "try:\n"
        "    parse_world({'agents': [{'brain': 'lender', 'params': {'principal': 0}}]}, source='w.toml')\n"
        "except ConfigError as e:\n"
        "    print(e)\n"
        "print(sorted(m for m in sys.modules if m.startswith('engine.brains')))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    refusal, loaded = r.stdout.strip().splitlines()
    assert refusal.startswith("w.toml: agents.0: params.principal:"), refusal
    assert loaded == "[]"


# -- no circles at run time ---------------------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The modules of ours `module` imports when it runs: at the top, in functions (a
    deferred import runs too, later), anywhere but under `if TYPE_CHECKING:`."""
    found: set[str] = set()

    def target(name: str) -> str | None:
        # `from engine.x import y`: y may be a submodule (engine.x.y) or a name in engine.x.
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    visit_one(stmt)
                continue
            visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                t = target(alias.name)
                if t:
                    found.add(t)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            for alias in node.names:
                t = target(f"{name}.{alias.name}") if name else None
                if t:
                    found.add(t)
        else:
            visit(node)

    visit(tree)
    found.discard(module)
    return found


def _ignored_edges() -> set[tuple[str, str]]:
    """The deferred imports pyproject lists, each with its reason, as import-linter's
    `ignore_imports`: the only edges the circle check leaves out."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    edges = set()
    for contract in config["contracts"]:
        for expr in contract.get("ignore_imports", []):
            importer, _, imported = (s.strip() for s in expr.partition("->"))
            edges.add((importer, imported))
    return edges


def import_graph(package: str) -> dict[str, set[str]]:
    """{module: the modules of `package` it imports at run time}, from the source."""
    files = {_module_name(p): p for p in (ROOT / package).rglob("*.py")}
    modules = set(files)
    ignored = _ignored_edges()
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        imported = _imports(tree, name, path.name == "__init__.py", modules)
        graph[name] = {m for m in imported if (name, m) not in ignored}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports, as a path that comes back to its start, or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt, BLACK) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt) == WHITE:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = BLACK
        return None

    for start in sorted(graph):
        if colour[start] == WHITE:
            found = dfs(start)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_circle_through_a_deferred_import_and_not_a_type_only_one():
    """The check itself can fail: a circle closed by an import inside a function is found;
    one closed only under TYPE_CHECKING is not a circle at run time."""
    a = ast.parse("from .b import x\n")
    b_deferred = ast.parse("def f():\n    from .a import y\n")
    b_typed = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import y\n")
    mods = {"p", "p.a", "p.b"}
    deferred = {"p.a": _imports(a, "p.a", False, mods), "p.b": _imports(b_deferred, "p.b", False, mods)}
    assert find_cycle(deferred) == ["p.a", "p.b", "p.a"]
    typed = {"p.a": _imports(a, "p.a", False, mods), "p.b": _imports(b_typed, "p.b", False, mods)}
    assert typed["p.b"] == set() and find_cycle(typed) is None


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circle_at_run_time(package):
    graph = import_graph(package)
    assert len(graph) > 5  # the package's modules were found
    cycle = find_cycle(graph)
    assert cycle is None, f"{package}: an import circle at run time: {' -> '.join(cycle)}"
