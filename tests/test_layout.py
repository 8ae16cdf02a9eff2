"""The house: dependencies between norefusal's modules run one way (DESIGN.md, "Layout").

Read from the source, every import counted (module level, inside functions, under
``TYPE_CHECKING``): a lazy or type-only import still ties two modules together.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Source folder -> package, as pyproject's package-dir maps them.
PACKAGES = {"scanner": "norefusal", "integrations": "norefusal.integrations",
            "policies": "norefusal.policies"}  # fmt: skip
#: The tooling: subpackages of scanner/ that the runtime never imports.
TOOLING = ("norefusal.bench", "norefusal.evaluation", "norefusal.export", "norefusal.training")
#: Import circles that another change is breaking; this list only shrinks.
KNOWN_CIRCLES = [{"norefusal.policies._guard", "norefusal.policies._monitor"}]


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "models" in path.relative_to(ROOT / folder).parts:
                continue
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """The norefusal modules that module ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
            stem = (
                ".".join(base + ([node.module] if node.module else []))
                if node.level
                else (node.module or "")
            )
            # "from . import x" names a module when there is one called x, else a name in stem.
            targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in MODULES else stem
                       for a in node.names]  # fmt: skip
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


GRAPH = {name: set(_imports(name, path)) for name, path in MODULES.items()}


def _circles() -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read() -> None:
    assert "norefusal._scanner" in GRAPH["norefusal"]
    assert "norefusal._stream" in GRAPH["norefusal._scanner"]
    assert "norefusal.policies._loading" in GRAPH["norefusal.policies._model"]


def test_no_import_circles() -> None:
    circles = [c for c in _circles() if c not in KNOWN_CIRCLES]
    assert circles == []


def test_the_scanner_and_its_stream_monitor_run_one_way() -> None:
    assert "norefusal._scanner" not in GRAPH["norefusal._stream"]


def test_policy_loading_never_imports_the_model() -> None:
    assert "norefusal.policies._model" not in GRAPH["norefusal.policies._loading"]


def test_the_core_knows_nothing_of_policies_integrations_or_tooling() -> None:
    core = [m for m in GRAPH if not m.startswith(("norefusal.policies", "norefusal.integrations"))]
    runtime = [m for m in core if not m.startswith(TOOLING)]
    above = ("norefusal.policies", "norefusal.integrations", *TOOLING)
    for module in runtime:
        assert {t for t in GRAPH[module] if t.startswith(above)} == set(), module


def test_policies_know_nothing_of_integrations() -> None:
    for module in (m for m in GRAPH if m.startswith("norefusal.policies")):
        assert not any(t.startswith("norefusal.integrations") for t in GRAPH[module]), module
