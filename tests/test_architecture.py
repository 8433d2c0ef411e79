"""The layering of the package, checked from its source: the import rules of docs/architecture.md (read from its
table), no import cycle, and no module grows past a size a reader can hold."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "attent_vision"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
MAX_LINES = 350
# What other packages may import of teaching/ and finetuning/ themselves: their public names and registries (the
# rest are their internals; docs/architecture.md)
TEACHING_PUBLIC = ("attent_vision.teaching", "attent_vision.teaching.scores", "attent_vision.teaching.strategies",
                   "attent_vision.teaching.selection_record")
TASK_KINDS = ("attent_vision.finetuning.task_kinds",)
INTERNALS = [("pretraining", "teaching", TEACHING_PUBLIC), ("report", "teaching", TEACHING_PUBLIC),
             ("config", "teaching", TEACHING_PUBLIC + ("attent_vision.teaching.settings",)),
             ("finetuning", "teaching", ()), ("report", "finetuning", TASK_KINDS), ("config", "finetuning", TASK_KINDS),
             ("engine", "teaching", ()), ("engine", "finetuning", ())]


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


def import_rules() -> dict[str, tuple[str, ...]]:
    """docs/architecture.md's "Who may import whom" table: package -> the module prefixes it must not import
    ("teaching internals" is checked by :func:`test_stages_and_the_report_use_only_the_public_teaching_interface`)."""
    text = ARCHITECTURE.read_text()
    table = text[text.index("## Who may import whom"):text.index("## What the command line imports")]
    rules = {}
    for row in re.findall(r"^\| `(\w+)/` \|.*\|(.*)\|$", table, flags=re.M):
        package, forbidden = row
        rules[package] = tuple(f"attent_vision.{name}" for name in re.findall(r"`([\w.]+)`", forbidden))
    return rules


def test_the_documented_rules_cover_every_package():
    rules = import_rules()
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()} - {"conf"}
    assert packages - set(rules) <= {"models", "data", "metrics"}, sorted(packages - set(rules))
    assert rules["teaching"] and rules["engine"] and rules["finetuning"]


@pytest.mark.parametrize("package", sorted(import_rules()))
def test_each_package_keeps_the_documented_import_rules(package):
    forbidden = import_rules()[package]
    for module, runs in _executes(f"attent_vision.{package}").items():
        bad = sorted(t for t in runs if t.startswith(forbidden))
        assert not bad, f"{module} imports {bad} (docs/architecture.md, 'Who may import whom')"


def direct_imports(prefix: str) -> dict[str, set[str]]:
    """For each module under ``prefix``: the package modules it imports itself (not what those import)."""
    edges = graph()
    return {m: edges[m] for m in edges if m == prefix or m.startswith(prefix + ".")}


@pytest.mark.parametrize("package,other,public", INTERNALS)
def test_packages_use_only_the_public_interface_of_teaching_and_finetuning(package, other, public):
    """The teacher's interface is its package's public names (Teacher, Learner, SelectionRecord, ...) and its
    registries; a stage that reaches into teaching internals (the plan's constants, the scoring pass) widens it.
    Likewise the fine-tuning stage offers the others its task-kind registry alone."""
    above = {p.rsplit(".", 1)[0] for p in public}  # packages a public module's import runs first
    for module, targets in direct_imports(f"attent_vision.{package}").items():
        inside = [t for t in targets if t == f"attent_vision.{other}" or t.startswith(f"attent_vision.{other}.")]
        internal = sorted(t for t in inside if not t.startswith(public) and t not in above)
        assert not internal, f"{module} imports {other} internals {internal} (docs/architecture.md)"


def test_no_module_over_the_size_limit():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


# Expressions that hold a registered name (a score, strategy, pretraining or downstream dataset, task kind): the
# identifiers of those concepts, the data config's name, a results.json setting. ``task`` is a task kind in the
# fine-tuning side only (elsewhere it names a MultiMAE output modality, which may share a kind's name).
# (Plurals are other collections: the probes' kinds, a teacher's scores.)
NAMED_BY_REGISTRY = re.compile(r"\w*(score|strategy|selection|kind|dataset)(?!s\b)\w*|\b(data|d)\.name\b")
TASK_SIDE = ("finetuning", "data/downstream", "config", "report", "cli")
REGISTRY_HOMES = ("teaching/scores/", "teaching/strategies/", "data/pretrain/kinds/", "data/downstream/datasets/",
                  "finetuning/task_kinds/")


def registered_names() -> set[str]:
    from attent_vision.data.downstream.datasets import DOWNSTREAM_DATASETS
    from attent_vision.data.pretrain.kinds import PRETRAIN_DATASETS
    from attent_vision.finetuning.task_kinds import TASK_KINDS
    from attent_vision.teaching.scores import SCORES
    from attent_vision.teaching.strategies import STRATEGIES

    return {n for r in (SCORES, STRATEGIES, PRETRAIN_DATASETS, DOWNSTREAM_DATASETS, TASK_KINDS) for n in r.names()}


def name_comparisons(root: Path, names: set[str]) -> list[str]:
    """``file:line: comparison`` for every comparison outside the registries' homes of an expression that holds a
    registered name with a string literal that is one (``kind == "cls"``, ``d.name != "synthetic"``,
    ``strategy in ("soft", "hard")``): a switch on an entry's name instead of a question to the entry."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith(REGISTRY_HOMES):
            continue
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            literals = {e.value for side in sides for e in ([side] if isinstance(side, ast.Constant) else
                                                            getattr(side, "elts", [])) if isinstance(e, ast.Constant)}
            if not literals & names:
                continue
            others = " ".join(ast.get_source_segment(source, s) or "" for s in sides
                              if not isinstance(s, (ast.Constant, ast.Tuple, ast.List, ast.Set)))
            task_side = relative.startswith(TASK_SIDE) and re.search(r"\btask\b", others)
            if NAMED_BY_REGISTRY.search(others) or task_side:
                found.append(f"{relative}:{node.lineno}: {ast.get_source_segment(source, node)}")
    return found


def test_no_code_switches_on_a_registered_name():
    found = name_comparisons(PACKAGE, registered_names())
    assert not found, "ask the registered entry instead (docs/architecture.md, 'Where a new piece goes'):\n" + \
        "\n".join(found)


def test_the_name_switch_check_finds_switches(tmp_path):
    """The check above is not vacuous: it finds the switches the package had before its registries."""
    (tmp_path / "switches.py").write_text(
        'def f(cfg, kind, strategy):\n'
        '    a = cfg.teaching.score == "learnability"\n'
        '    b = kind != "cls"\n'
        '    c = strategy in ("soft", "hard")\n'
        '    d = cfg.data.name == "synthetic"\n'
        '    e = "depth" in cfg.model.in_domains  # a modality, not a task kind: allowed\n')
    found = name_comparisons(tmp_path, {"learnability", "cls", "soft", "synthetic", "depth"})
    assert [f.split(":")[1] for f in found] == ["2", "3", "4", "5"], found
