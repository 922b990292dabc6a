"""The phase chain is written once (``pipelines.multiblock.chain``): no other file spells it."""
from __future__ import annotations

import ast
import re

from pipelines.multiblock import chain
from tests.scripts.helpers import REPO

SKIPPED = {".venv", "tests", "runs", "datasets"}


def literal_scripts(text: str) -> set[str]:
    """The phase scripts named by a string literal of Python source ``text``."""
    return {node.value for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Constant) and node.value in chain.SCRIPTS}


def spellers() -> list[str]:
    """Files other than chain.py that name two or more phase scripts as values (a list of scripts, a loop)."""
    found = []
    for path in sorted(REPO.rglob("*.py")):
        relative = path.relative_to(REPO)
        if relative.parts[0] in SKIPPED or path.name == "chain.py":
            continue
        if len(literal_scripts(path.read_text(encoding="utf-8"))) >= 2:
            found.append(str(relative))
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    if len(set(re.findall(r"phase\d(?:_\d)?\.py", makefile))) >= 2:
        found.append("Makefile")
    return found


def test_the_chain_is_spelled_in_chain_py_alone() -> None:
    assert spellers() == []


def test_the_check_finds_a_second_spelling() -> None:
    assert literal_scripts('PHASES = ("phase1_1.py", "phase1_2.py")') == {"phase1_1.py", "phase1_2.py"}
    assert literal_scripts('print("run phase1_1.py first")') == set()
    assert len(literal_scripts((REPO / "pipelines" / "multiblock" / "chain.py").read_text(encoding="utf-8"))) == 6
