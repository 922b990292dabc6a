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
