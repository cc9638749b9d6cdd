"""The package's modules import each other without a circle: each module uses only modules below it,
so a newcomer can read (and test) any module without the ones that use it."""

import ast
from pathlib import Path

from conftest import REPO


def package_imports(package_dir: Path) -> dict[str, set[str]]:
    """{module: modules of the package it imports}, module-level and inside functions alike, for
    every .py file under `package_dir` (module names dotted from the package's name)."""
    package = package_dir.name
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the containing package, one level up per extra dot
                    anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets.add(base)
                # `from package import module` imports the module, not only the package
                targets.update(f"{base}.{a.name}" for a in node.names)
        graph[name] = {t for t in targets if t in modules and t != name and t.split(".")[0] == package}
    return graph


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the import graph as [a, b, ..., a], or None when there is none."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once explored
    path: list[str] = []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_definemed_has_no_import_circle():
    graph = package_imports(REPO / "definemed")
    assert (
        "definemed.miniature.fixtures" in graph
        and "definemed.miniature.fixture_text" in graph["definemed.miniature.fixtures"]
    )
    cycle = import_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_a_circle_through_a_function_level_import_is_found(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import f\n")
    (pkg / "b.py").write_text("from pkg import c\n\ndef f():\n    return 1\n")
    (pkg / "c.py").write_text("def g():\n    from . import a\n    return a\n")
    (pkg / "d.py").write_text("import pkg.a\n")
    graph = package_imports(pkg)
    assert graph["pkg.d"] == {"pkg.a"} and graph["pkg.b"] == {"pkg", "pkg.c"}
    assert import_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    (pkg / "c.py").write_text("def g():\n    return 1\n")
    assert import_cycle(package_imports(pkg)) is None


# The stages in the order of the paper's DAG; the shared modules (definemed/*.py) sit below them,
# except the two that read a whole run's config and plan it, which sit above.
STAGES = ["dataset", "training", "evaluation", "judges", "miniature", "paper"]
ABOVE_THE_STAGES = {"definemed.inputs", "definemed.plan"}


def layer(module: str) -> tuple[int, str]:
    """(floor, stage) of a module: 0 the shared modules, 1.. the stages in order, then the run's."""
    parts = module.split(".")
    if module in ABOVE_THE_STAGES:
        return len(STAGES) + 1, module
    if len(parts) > 1 and parts[1] in STAGES:
        return STAGES.index(parts[1]) + 1, parts[1]
    return 0, module


def test_a_stage_imports_the_shared_modules_and_the_stages_before_it_only():
    graph = package_imports(REPO / "definemed")
    assert {f"definemed.{s}" for s in STAGES} <= set(graph)
    wrong = []
    for module, targets in sorted(graph.items()):
        floor, stage = layer(module)
        for target in sorted(targets):
            target_floor, target_stage = layer(target)
            if target_floor > floor or (target_floor == floor and target_stage != stage and floor > 0):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the stage order " + " > ".join(STAGES) + ":\n" + "\n".join(wrong)
