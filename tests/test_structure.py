"""The shape of the library: core knows no tier, no import cycles, one tier registry.

Imports are read with `ast` from the source (every `import` and `from ... import`,
at module level, inside functions and under TYPE_CHECKING alike), so nothing is run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
MODULES = PROJECT / "modules"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, package: str, known: set[str]) -> set[str]:
    """The modules of `known` that `source` (module `module` in `package`) imports
    (`from modules import aws` names modules.aws)."""
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            # `import modules.api.config` also imports modules.api: the longest known prefix is the target.
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(MODULES.rglob("*.py"))
    known = {module_name(path) for path in paths}
    graph = {}
    for path in paths:
        module = module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        graph[module] = imported_modules(path.read_text(encoding="utf-8"), module, package, known)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component of more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
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
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_reader_sees_module_and_function_level_imports():
    """The checks below are only as good as the reader: a function-level import counts."""
    source = "from modules import b\n\ndef f():\n    from modules.c import thing\n    import modules.d\n    from .e import x\n"
    known = {"modules", "modules.a", "modules.b", "modules.c", "modules.d", "modules.e"}
    assert imported_modules(source, "modules.a", "modules", known) == {
        "modules", "modules.b", "modules.c", "modules.d", "modules.e"}


def test_cycle_finder_finds_a_cycle_through_three_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_core_imports_no_tier_and_nothing_above_it():
    """modules/core/ is generic: it may import itself and the provider bindings (modules.aws) only."""
    allowed = ("modules.core", "modules.aws")
    offenders = {
        module: sorted(name for name in imports if name.startswith("modules") and not name.startswith(allowed)
                       and name != "modules")
        for module, imports in import_graph().items() if module.startswith("modules.core")
    }
    offenders = {module: names for module, names in offenders.items() if names}
    assert offenders == {}, f"core imports tiers or modules above it: {offenders}"


def test_no_import_cycle_in_modules():
    graph = import_graph()
    # `modules` (the package's __init__) is imported by every `from modules import x`: it imports
    # nothing (it used to install the Node preload as a side effect).
    assert graph["modules"] == set()
    assert cycles(graph) == []


# --- the tier registry drives the app, the layout and the diagrams -----------------------------

def _extra_tier():
    from cdktf import TerraformOutput

    from modules.tiers import Tier

    def build(context):
        # The builder sees its config and the tiers before it.
        assert context.config is context.environment.frontend
        assert set(context.built) == {"network", "database", "api", "frontend"}
        return TerraformOutput(context.stack, "Marker", value=context.stack.prefix)

    return Tier("worker", config_field="frontend", build=build, depends_on=("network",), reads_cicd=True)


@pytest.fixture
def registry_with_a_fifth_tier(monkeypatch):
    from modules import tiers

    monkeypatch.setattr(tiers, "TIERS", (*tiers.TIERS, _extra_tier()))
    return tiers


def test_one_registry_entry_adds_a_tier_to_the_layout(registry_with_a_fifth_tier, environments):
    from modules.layout import stack_dependencies, stack_names, tier_names

    assert tier_names()[-1] == "worker"
    assert "dev-worker" in stack_names(environments)
    assert stack_dependencies(environments)["dev-worker"] == ("bootstrap", "shared-cicd", "dev-network")


def test_one_registry_entry_adds_a_tier_to_the_diagrams(registry_with_a_fifth_tier):
    from diagrams_gen.graph import picture_tiers

    assert picture_tiers() == ("bootstrap", "network", "database", "api", "frontend", "worker", "cicd")


def test_one_registry_entry_adds_a_tier_to_the_app(registry_with_a_fifth_tier, tmp_path):
    from modules.app import build_app
    from modules.core.target import Target
    from modules.environment import load_environments

    partial = load_environments(PROJECT / "environments", ("dev",))
    app = build_app(partial, target=Target(), outdir=tmp_path)
    stacks = [child.node.id for child in app.node.children]
    assert stacks == ["dev-network", "dev-database", "dev-api", "dev-frontend", "dev-worker"]


def test_no_test_module_imports_another():
    """Shared helpers live in tests/harness/ (and require() in conftest.py), never in a test module."""
    tests = PROJECT / "tests"
    offenders = []
    for path in sorted(tests.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(PROJECT)} imports {name}" for name in names
                          if name.rpartition(".")[2].startswith("test_")]
    assert offenders == []
