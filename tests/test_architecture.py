"""The import rules of docs/architecture.md, checked on the source.

Every module under signpipe/, components/ and pipelines/ is parsed (nothing is imported) and
every import statement in it, at any depth (inside functions too), becomes an edge
module -> module:

- `import a.b.c` imports `a.b.c`;
- `from x import y` imports `x`, and also `x.y` where `x.y` is a module of ours;
- relative imports are resolved against the importing module's package.

The "package" of a module is its first two dotted parts (`signpipe.data`, `signpipe.errors`,
`components.signs`, `components.corpus`), except that everything under pipelines/ is one
package, `pipelines`.

Each test collects every violation of its rule and fails with the whole list, so one run shows
all that is left to fix.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP_PACKAGES = ("signpipe", "components", "pipelines")
SHARED_LAYERS = ("signpipe.data", "signpipe.landmarks", "signpipe.train", "signpipe.export")
TASK_PACKAGES = ("signpipe.signs", "signpipe.fingerspelling")
KFP_MODULES = ("kfp", "google_cloud_pipeline_components")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (ours or not)
    line: int

    def where(self) -> str:
        return f"{module_files()[self.source].relative_to(ROOT)}:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def module_files() -> dict[str, Path]:
    """Module name -> file, for every module of ours."""
    files = {}
    for top in TOP_PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            files[module_name(path)] = path
    return files


def is_package(module: str) -> bool:
    return module_files()[module].name == "__init__.py"


def is_ours(module: str) -> bool:
    return module.split(".")[0] in TOP_PACKAGES


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def package_of(module: str) -> str:
    if within(module, "pipelines"):
        return "pipelines"
    return ".".join(module.split(".")[:2])


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports_of(module: str, tree: ast.AST) -> Iterator[Import]:
    files = module_files()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, node)
            if target == "__future__":
                continue
            yield Import(module, target, node.lineno)
            for alias in node.names:
                if f"{target}.{alias.name}" in files:
                    yield Import(module, f"{target}.{alias.name}", node.lineno)


@functools.cache
def trees() -> dict[str, ast.Module]:
    return {module: ast.parse(path.read_text(), str(path)) for module, path in module_files().items()}


@functools.cache
def all_imports() -> tuple[Import, ...]:
    return tuple(imp for module, tree in trees().items() for imp in _imports_of(module, tree))


def _our_target(target: str) -> str | None:
    """The module of ours that `target` names: itself, or its longest prefix that is one of ours
    (`import signpipe.data.corpus.open_corpus` does not occur, but a name of a missing module
    should still be reported against what exists)."""
    files = module_files()
    parts = target.split(".")
    while parts:
        name = ".".join(parts)
        if name in files:
            return name
        parts.pop()
    return None


def module_graph() -> dict[str, dict[str, Import]]:
    """Module -> {imported module of ours: the first import statement naming it}."""
    graph: dict[str, dict[str, Import]] = {module: {} for module in module_files()}
    for imp in all_imports():
        target = _our_target(imp.target) if is_ours(imp.target) else None
        if target is not None and target != imp.source:
            graph[imp.source].setdefault(target, imp)
    return graph


def package_graph() -> dict[str, dict[str, Import]]:
    graph: dict[str, dict[str, Import]] = {}
    for source, targets in module_graph().items():
        graph.setdefault(package_of(source), {})
        for target, imp in targets.items():
            if package_of(target) != package_of(source):
                graph[package_of(source)].setdefault(package_of(target), imp)
    return graph


def strongly_connected(graph: dict[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively; components with more than one node, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def a_cycle(graph: dict[str, dict[str, Import]], members: list[str]) -> list[str]:
    """One cycle through the first of `members`, staying inside them (breadth-first, so short)."""
    start, inside = members[0], set(members)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child not in inside:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")


def describe_cycles(graph: dict[str, dict[str, Import]]) -> list[str]:
    reports = []
    for members in strongly_connected(graph):
        cycle = a_cycle(graph, members)
        steps = [f"{a} -> {b} ({graph[a][b].where()})" for a, b in zip(cycle, cycle[1:], strict=False)]
        reports.append(f"cycle among {', '.join(members)}:\n      " + "\n      ".join(steps))
    return reports


def fail_with(rule: str, violations: list[str]) -> None:
    assert not violations, f"{rule}: {len(violations)} violation(s)\n  " + "\n  ".join(violations)


def violations_of(sources: str | tuple[str, ...], targets: tuple[str, ...]) -> list[str]:
    """Every import by a module under `sources` of a module under `targets`."""
    sources = (sources,) if isinstance(sources, str) else sources
    found = []
    for imp in all_imports():
        if any(within(imp.source, s) for s in sources) and any(within(imp.target, t) for t in targets):
            found.append(f"{imp.source} imports {imp.target} ({imp.where()})")
    return sorted(set(found))


def test_the_walk_sees_every_recipe_and_layer() -> None:
    """Guards the rules below against passing vacuously (a wrong root, a parser that sees nothing)."""
    modules = module_files()
    for expected in ("signpipe.data.corpus", "signpipe.signs.train", "signpipe.train.loop", "components.corpus",
                     "components.signs.train", "components.fingerspelling.finetune", "pipelines.presets"):
        assert expected in modules, expected
    graph = module_graph()
    assert "signpipe.signs.config" in graph["signpipe.signs.train"]
    # an import inside a function counts, and `from x import submodule` names the submodule
    assert "signpipe.landmarks.aspect" in graph["signpipe.signs.train"]
    assert "signpipe.signs.augment" in graph["signpipe.signs.train"]


def test_the_cycle_finder_names_a_cycle_and_nothing_else() -> None:
    where = Import("signpipe.errors", "x", 1)
    graph = {"a": {"b": where}, "b": {"c": where}, "c": {"a": where, "d": where}, "d": {}, "e": {"d": where}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert a_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    assert strongly_connected({"a": {"b": where}, "b": {}}) == []


def test_no_import_cycle_between_modules() -> None:
    fail_with("import cycles between modules", describe_cycles(module_graph()))


def test_no_import_cycle_between_packages() -> None:
    fail_with("import cycles between packages", describe_cycles(package_graph()))


def test_components_do_not_import_pipelines() -> None:
    fail_with("components importing pipelines", violations_of("components", ("pipelines",)))


def test_the_library_does_not_import_kfp() -> None:
    fail_with("signpipe importing kfp", violations_of("signpipe", KFP_MODULES))


COMMAND_LINE = "signpipe.cli"
"""The one part of signpipe that drives whole pipelines (`signpipe run`, `compile`, `submit`,
`presets`): it may import `pipelines`, but only inside a command's function (see below)."""


def test_the_library_does_not_import_components_or_pipelines() -> None:
    violations = [line for line in violations_of("signpipe", ("components", "pipelines"))
                  if not within(line.split(" imports ")[0], COMMAND_LINE)]
    violations += violations_of(COMMAND_LINE, ("components",))
    fail_with("signpipe importing components or pipelines", violations)


def _module_level_imports(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(module, line) of every import that runs when the module itself is imported: outside any
    function body (a class body or an `if` at module level still runs)."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module, node.lineno
        pending.extend(ast.iter_child_nodes(node))


def test_the_command_line_loads_pipelines_and_kfp_only_when_a_command_runs() -> None:
    """`signpipe --help` and every library command start without kfp: the command line imports
    `pipelines` (which imports kfp) inside the functions of the commands that drive pipelines."""
    violations = []
    for module, tree in trees().items():
        if not within(module, COMMAND_LINE):
            continue
        for target, line in _module_level_imports(tree):
            if any(within(target, top) for top in ("pipelines", "components", *KFP_MODULES)):
                violations.append(f"{module} imports {target} at module level ({module_files()[module].relative_to(ROOT)}:{line})")
    fail_with("the command line importing pipelines at import time", sorted(violations))
    loaded = subprocess.run([sys.executable, "-c", "import sys, signpipe.cli; "
                             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kfp', 'pipelines', 'components')))"],
                            capture_output=True, text=True, cwd=ROOT, check=True)
    assert loaded.stdout.strip() == "[]", f"importing signpipe.cli loaded {loaded.stdout.strip()}"


def test_shared_layers_import_no_task_package() -> None:
    fail_with("shared layers importing a task package", violations_of(SHARED_LAYERS, TASK_PACKAGES))


def test_task_packages_do_not_import_each_other() -> None:
    violations = []
    for task in TASK_PACKAGES:
        violations += violations_of(task, tuple(other for other in TASK_PACKAGES if other != task))
    fail_with("task packages importing each other", violations)


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _module_level_calls(tree: ast.Module) -> Iterator[ast.Call]:
    """Calls that run when the module is imported: in module-level statements (not inside a
    function or class body, but in decorators, base classes and default values)."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            pending.extend(node.decorator_list)
            pending.extend(node.args.defaults)
            pending.extend(d for d in node.args.kw_defaults if d is not None)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Call):
            yield node
        pending.extend(ast.iter_child_nodes(node))


def test_no_registration_at_import_time() -> None:
    """Stages and recipes are listed in tables, not registered by importing a module."""
    violations = []
    for module, tree in trees().items():
        where = module_files()[module].relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "register_stage":
                violations.append(f"{module} defines register_stage ({where}:{node.lineno})")
        for call in _module_level_calls(tree):
            if _called_name(call).startswith("register"):
                violations.append(f"{module} calls {_called_name(call)} at import time ({where}:{call.lineno})")
    fail_with("registration at import time", sorted(violations))
