"""Imports go one way: core -> (data, models) -> (engine, inference) -> pipelines -> experiments/benchmarks
-> scripts. The test reads every module's imports (ast) and holds no list of today's imports."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Packages of one layer may not import each other (siblings); a layer imports only lower layers.
LAYERS = [("core",), ("data", "models"), ("engine", "inference"), ("pipelines",), ("experiments", "benchmarks")]
LAYER_OF = {package: level for level, names in enumerate(LAYERS) for package in names}
SCRIPT_LAYER = len(LAYERS)


def imported_packages(path: Path) -> set[str]:
    """Top-level names of our packages imported anywhere in ``path`` (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(LAYER_OF)


def layer_violations(repo: Path) -> list[str]:
    problems = []
    sources = [(path, path.relative_to(repo).parts[0]) for package in LAYER_OF
               for path in sorted((repo / package).rglob("*.py"))]
    sources += [(path, None) for path in sorted(repo.glob("*.py"))]
    for path, package in sources:
        level = LAYER_OF[package] if package else SCRIPT_LAYER
        for target in imported_packages(path):
            if target != package and LAYER_OF[target] >= level:
                kind = "sideways" if LAYER_OF[target] == level else "upward"
                problems.append(f"{path.relative_to(repo)} imports {target} ({kind})")
    return problems


def test_imports_only_go_down_the_layers():
    assert layer_violations(REPO) == []


def test_the_check_finds_upward_and_sideways_imports(tmp_path: Path):
    for package, source in {"core": "import data.io\n", "data": "def f():\n    from models import x\n",
                            "models": "", "engine": "from inference.metrics import psnr\n", "inference": "",
                            "pipelines": "from core import errors\n", "experiments": "", "benchmarks": ""}.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / "mod.py").write_text(source)
    assert sorted(layer_violations(tmp_path)) == [
        "core/mod.py imports data (upward)", "data/mod.py imports models (sideways)",
        "engine/mod.py imports inference (sideways)"]


# Import cycles between modules. Imports inside functions count too: a lazy import only hides a circle from
# the interpreter (core.errors <-> core.dist was one), not from the reader who follows it. An import names
# the most specific project module it reaches (``from pipelines.multiblock import apply`` -> that module,
# ``from models import ESPCN`` -> models/__init__.py); the parent packages it also initialises are left out,
# so a package's __init__ that gathers its submodules is not a circle with them.
def project_modules(repo: Path) -> dict[str, Path]:
    """Every module of the project outside tests/ and hidden folders (the virtual environment), by name."""
    modules = {}
    for path in sorted(repo.rglob("*.py")):
        parts = path.relative_to(repo).with_suffix("").parts
        if parts[0] == "tests" or any(part.startswith(".") for part in parts):
            continue
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:``: imports for annotations only never run."""
    nodes, todo = [], [tree]
    while todo:
        node = todo.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return nodes


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that ``name`` (at ``path``) imports when it runs, anywhere in its source (inside
    functions too: a lazy import only hides a circle); ``if TYPE_CHECKING:`` imports are left out."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # a name inside a module, or a module of another project
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_cycles(repo: Path) -> list[list[str]]:
    """The groups of modules that import each other in a circle (Tarjan's strongly connected components)."""
    modules = project_modules(repo)
    graph = {name: sorted(imported_modules(name, path, modules)) for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                cycles.append(sorted(group))

    for name in graph:
        if name not in index:
            visit(name)
    return sorted(cycles)


def test_no_module_imports_itself_through_others():
    assert import_cycles(REPO) == []


def test_the_check_finds_a_cycle_hidden_in_a_function_but_not_one_of_annotations(tmp_path: Path):
    sources = {"core/__init__.py": "", "core/a.py": "from core.b import f\n",
               "core/b.py": "def f():\n    import core.c\n", "core/c.py": "from . import a\n",
               "core/d.py": "from core.a import x\nimport core.e\nimport torch\n",
               "models/__init__.py": "from models.m import M\n",
               "core/e.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from core.d import D\n",
               "models/m.py": "from models.helpers import h\n", "models/helpers.py": "",
               "tests/t.py": "import core.a\n", "script.py": "import core.d\n"}
    for name, source in sources.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(source)
    assert import_cycles(tmp_path) == [["core.a", "core.b", "core.c"]]
