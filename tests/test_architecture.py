"""The layering of the package, checked from its source: no import cycle, the teaching core and the probes import
no engine or stage, the stages do not import each other, and no module grows past a size a reader can hold."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "attent_vision"
MAX_LINES = 350


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Package modules ``path`` imports (anywhere in the file, lazy imports included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("attent_vision"):
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)  # `from . import x` may name a module
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("attent_vision"))
    return found


def graph() -> dict[str, set[str]]:
    """module -> the package modules importing it runs: each imported module and the packages above it (Python
    executes ``a/__init__.py`` and ``a/b/__init__.py`` before ``a.b.c``)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        targets = set()
        for target in imports_of(path):
            while target and target not in modules:  # `from .x import y` names y, a symbol: keep the module x
                target = target.rpartition(".")[0]
            while target:
                if target != name and not name.startswith(target + "."):  # not the packages above itself
                    targets.add(target)
                target = target.rpartition(".")[0]
        edges[name] = targets
    return edges


def reachable(module: str, edges: dict[str, set[str]]) -> set[str]:
    """Every package module that importing ``module`` executes."""
    seen, todo = set(), [module]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_cycle():
    edges = graph()
    # A package __init__ imports its submodules; a submodule importing its own package is not a cycle of concepts
    # as long as the __init__ does not need it back, so check cycles among modules proper.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in edges[node]:
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue  # a package and its own submodules
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if not state.get(nxt):
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if not state.get(node):
            visit(node)


def _executes(prefix: str) -> dict[str, set[str]]:
    """For each module under ``prefix``: every package module importing it executes (transitively)."""
    edges = graph()
    return {m: reachable(m, edges) for m in edges if m == prefix or m.startswith(prefix + ".")}


def test_teaching_imports_no_engine_no_stage_no_model_no_data():
    forbidden = ("attent_vision.engine", "attent_vision.pretraining", "attent_vision.finetuning",
                 "attent_vision.models", "attent_vision.data", "attent_vision.config", "attent_vision.cli")
    for module, runs in _executes("attent_vision.teaching").items():
        bad = sorted(t for t in runs if t.startswith(forbidden))
        assert not bad, f"{module} imports {bad}"


def test_probes_import_no_engine_no_stage_no_teaching():
    forbidden = ("attent_vision.engine", "attent_vision.pretraining", "attent_vision.finetuning",
                 "attent_vision.teaching", "attent_vision.config", "attent_vision.cli")
    for module, runs in _executes("attent_vision.probes").items():
        bad = sorted(t for t in runs if t.startswith(forbidden))
        assert not bad, f"{module} imports {bad}"


def test_engine_imports_no_stage_and_no_teaching():
    forbidden = ("attent_vision.pretraining", "attent_vision.finetuning", "attent_vision.teaching", "attent_vision.cli")
    for module, runs in _executes("attent_vision.engine").items():
        bad = sorted(t for t in runs if t.startswith(forbidden))
        assert not bad, f"{module} imports {bad}"


def test_stages_do_not_import_each_other():
    for a, b in (("pretraining", "finetuning"), ("finetuning", "pretraining")):
        for module, runs in _executes(f"attent_vision.{a}").items():
            bad = sorted(t for t in runs if t.startswith(f"attent_vision.{b}"))
            assert not bad, f"{module} imports {bad}"


def test_no_module_over_the_size_limit():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
