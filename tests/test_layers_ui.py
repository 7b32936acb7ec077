"""No import circle at runtime inside containers/ or tui/ (issue 15).

The module graph is built from the source with `ast`, so it sees every import a module can
run, deferred ones inside functions included, and leaves out only those under
`if TYPE_CHECKING:` (they never run). An edge goes to the module an import names: to
`pkg.mod` for `from pkg import mod` when `mod` is a module, else to `pkg`. Importing a
submodule also runs its package's `__init__`, but that implicit edge is not drawn (as in
import-linter): a package face that re-exports its modules is not a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: all of them but the body of `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(package: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the modules of `package` it imports at runtime."""
    files = {
        _module_name(path, root): path
        for path in sorted((root / package).rglob("*.py"))
        if "__pycache__" not in path.parts
    }
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in _runtime_imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = here[: len(here) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                    for alias in node.names
                ]
            for target in targets:
                # `import pkg.a.b` names pkg.a.b; keep the longest prefix that is ours.
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph (its modules, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


@pytest.mark.parametrize("package", ["containers", "tui"])
def test_no_import_circle_at_runtime(package: str) -> None:
    graph = import_graph(package)
    assert sum(len(targets) for targets in graph.values()) > 20, "the graph is not empty"
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_graph_sees_what_it_must(tmp_path: Path) -> None:
    """The checker itself: a deferred import closes a circle, a type-only import does not,
    and relative imports resolve to the module they name."""
    pkg = tmp_path / "p"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from p.a import A\n")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p.b import B\nA = 1\n"
    )
    (pkg / "b.py").write_text("from .a import A\nB = 2\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from .. import b\nfrom ..sub import d\n")
    (pkg / "sub" / "d.py").write_text("import p.sub.c\n")
    graph = import_graph("p", tmp_path)
    assert graph["p.a"] == set()  # type-only
    assert graph["p.b"] == {"p.a"}
    assert graph["p.sub.c"] == {"p.b", "p.sub.d"}
    assert find_cycle(graph) == ["p.sub.c", "p.sub.d", "p.sub.c"]
    (pkg / "sub" / "d.py").write_text("def later():\n    import p.b\n")
    assert find_cycle(import_graph("p", tmp_path)) is None
    (pkg / "a.py").write_text("def later():\n    from p.b import B\n")  # deferred: it runs
    assert find_cycle(import_graph("p", tmp_path)) == ["p.a", "p.b", "p.a"]
