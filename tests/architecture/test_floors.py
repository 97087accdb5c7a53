"""The floors of docs/design.md ("Packages and floors"), read from the code's own imports: ``expr_common``
at the bottom, ``gan_aug`` and ``recognizer`` side by side on it (neither imports the other), the
experiment above both; inside ``expr_common``, core <- data <- corpus, the corpus imported only by the
commands that make it; report modules reach no trainer; no import cycle between modules (imports inside
functions count too), and no package file over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from expr_common.errors import ExprError
from expr_common.paths import repo_root

PACKAGES = {  # import name -> folder under packages/
    "expr_common": "common",
    "gan_aug": "gan_aug",
    "recognizer": "recognizer",
    "expr_experiment": "experiment",
}
MAY_IMPORT = {
    "expr_common": set(),
    "gan_aug": {"expr_common"},
    "recognizer": {"expr_common"},
    "expr_experiment": {"expr_common", "gan_aug", "recognizer"},
}
MAX_LINES = 400
# Inside expr_common: core (labels, config, runs, atomic...) <- data (readers, cache, `expr-data`) <- corpus.
COMMON_FLOORS = ("core", "data", "corpus")
# The only modules outside the corpus that import it: the command lines, which make a missing procedural
# corpus on first use (expr_common.synth.ondemand.enable), and `expr-data synth`.
CORPUS_COMMANDS = {
    "expr_common.cli",
    "expr_common.commands.synth",
    "gan_aug.cli",
    "gan_aug.train",
    "recognizer.cli",
    "expr_experiment.cli",
}
TRAINERS = {"recognizer.trainer", "recognizer.ablate", "gan_aug.train", "gan_aug.training", "gan_aug.trainer"}


def _modules() -> dict[str, Path]:
    found = {}
    for name, folder in PACKAGES.items():
        root = repo_root() / "packages" / folder
        for path in sorted((root / name).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[module] = path
    return found


def _imports(path: Path, module: str, known: set[str]) -> set[str]:
    """The project modules ``path`` imports (``from a import b`` names module ``a.b`` when there is one)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != module:
                out.add(target)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(p, m, set(modules)) for m, p in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read():
    graph = _graph()
    # A module the experiment is known to import from each method package, and one inside gan_aug.fid.
    assert "recognizer.ablation" in graph["expr_experiment.chain"]
    assert "gan_aug.grids" in graph["expr_experiment.layout"]
    assert "gan_aug.fid.report" in graph["gan_aug.fid.floor"]
    assert len(graph) > 100


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_each_package_imports_only_the_floors_below(package):
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in _graph().items()
        if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in MAY_IMPORT[package] | {package}
    )
    assert not wrong, f"{package} reaches into a package it may not import: {wrong}"


def _common_floor(module: str) -> str:
    if module.startswith("expr_common.synth"):
        return "corpus"
    data = ("expr_common.data", "expr_common.commands", "expr_common.cli", "expr_common.__main__")
    if module.startswith(data):
        return "data"
    return "core"


def test_common_has_floors_inside():
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in _graph().items()
        if module.startswith("expr_common")
        for target in targets
        if COMMON_FLOORS.index(_common_floor(target)) > COMMON_FLOORS.index(_common_floor(module))
        and module not in CORPUS_COMMANDS
    )
    assert not wrong, f"a floor of expr_common reaches up: {wrong}"
    assert _common_floor("expr_common.labels") == "core" and _common_floor("expr_common.data.cache") == "data"


def test_the_corpus_is_imported_only_by_the_commands_that_make_it():
    users = {
        module
        for module, targets in _graph().items()
        if not module.startswith("expr_common.synth")
        for target in targets
        if target.startswith("expr_common.synth")
    }
    assert users == CORPUS_COMMANDS  # equal: a command that stops making the corpus leaves this list too


def _reach(graph: dict[str, set[str]], module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_report_modules_reach_no_trainer():
    graph = _graph()
    reports = [m for m in graph if m.startswith("expr_experiment.report")]
    assert "expr_experiment.report_sections" in reports
    wrong = {m: sorted(_reach(graph, m) & TRAINERS) for m in reports if _reach(graph, m) & TRAINERS}
    assert not wrong, f"writing a report must not be able to train: {wrong}"
    assert "recognizer.trainer" in _reach(graph, "recognizer.ablate")  # the search does reach trainers


def test_running_a_model_never_imports_the_exporter():
    graph = _graph()
    runners = ["recognizer", "recognizer.api", "recognizer.predictors", "recognizer.onnx_runtime"]
    assert not [m for m in runners if "recognizer.export" in _reach(graph, m)]
    assert "recognizer.onnx_runtime" in _reach(graph, "recognizer.export")  # it writes what the runtime reads


def test_no_import_cycle():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_package_file_is_over_400_lines():
    long = {
        str(p): n
        for p in _modules().values()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these by role: {long}"


@pytest.mark.parametrize("cli", ["expr_common.cli", "gan_aug.cli", "recognizer.cli", "expr_experiment.cli"])
def test_every_subcommand_is_a_module_of_the_one_helper(cli):
    import importlib

    registry = importlib.import_module(cli).SUBCOMMANDS
    assert registry
    for name, (module_name, summary) in registry.items():
        module = importlib.import_module(module_name)
        assert callable(module.add_arguments) and callable(module.run), (name, module_name)
        # Only the project's own error types are printed as one line; a builtin (ValueError) would hide bugs.
        assert all(issubclass(e, ExprError) for e in getattr(module, "USER_ERRORS", ())), name
        assert summary, name
