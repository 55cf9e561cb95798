"""The sandbox stands alone: it shares no code with the clients it checks, and its modules import one way."""

from __future__ import annotations

import ast
from pathlib import Path

SANDBOX = Path(__file__).resolve().parents[1] / "sandbox"


def imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function (`from sandbox import x` -> sandbox.x)."""
    package = f"sandbox.{path.stem}".rsplit(".", 1)[0] if path.stem != "__init__" else "sandbox"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def graph() -> dict[str, set[str]]:
    modules = {f"sandbox.{p.stem}": p for p in SANDBOX.glob("*.py") if p.stem != "__init__"}
    assert len(modules) >= 10
    return {m: {i for i in imports(p) if i in modules and i != m} for m, p in modules.items()}


def test_no_sandbox_module_imports_the_connectors_or_the_pipelines():
    offending = {f"sandbox/{p.name}": sorted(i for i in imports(p) if i.split(".")[0] in ("connectors", "pipelines"))
                 for p in sorted(SANDBOX.rglob("*.py"))}
    assert {k: v for k, v in offending.items() if v} == {}


def test_the_sandbox_modules_import_each_other_without_a_cycle():
    g = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(g[m]):
            if state.get(n) == 1:
                cycles.append(path[path.index(n):] + [m, n] if n in path else [m, n])
            elif n not in state:
                visit(n, path + [m])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [])
    assert cycles == [], " ; ".join(" -> ".join(c) for c in cycles)
    assert g["sandbox.server"] >= {"sandbox.jira_api", "sandbox.github_api", "sandbox.github_graphql"}
