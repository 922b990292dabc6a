"""README.md and docs/*.md name only what exists: every module, attribute, file, flag, setting and preset they
give in backticks or run in a code block (the rules: tests/docs_names.py)."""
from __future__ import annotations

import pytest

from tests.docs_names import Project, problems_in
from tests.scripts.helpers import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


@pytest.fixture(scope="module")
def project() -> Project:
    return Project(REPO)


def test_the_docs_name_only_what_exists(project: Project):
    problems = [f"{doc.relative_to(REPO)}:{line}: `{name}`: {why}"
                for doc in DOCS for line, name, why in problems_in(doc.read_text(encoding="utf-8"), project)]
    assert problems == []


GOOD = """
A module `core.errors`, a class `core.errors.UserError`, a function `data.io.read_image`, called
`data.io.to_float(a)`, by its module's own name `errors.UserError`; files `phase1_1.py`, `docs/running.md`,
`weights/espcn_x3_y.pt`; a flag `--seed`, a setting `RESBLOCK`, a variable `SR_DATA`; `phase1_1.py --set
PRESET=tiny`, `experiments/phases_vs_end_to_end.py --set PRESET=city100`, `--set DATASET=city100`.
Prose: `make demo`, `bf16`, `N_1`, `3.5`, `AMD EPYC (family 26)`, `runs/x/N1.pt`, `compare.png`, `--data DIR`
(`DIR` = a folder), `NAME=VALUE`.

```bash
python -m pipelines.multiblock.apply --weights weights/espcn_x3_y.pt photo.jpg --out sharpened/
torchrun --nproc_per_node=2 phase1_1.py --data DIR --set PRESET=small
python -m pip install --upgrade pip
```
"""
BAD = """
`core.errorz`, `core.errors.UserEror`, `data.io.to_flaot(a)`, `errors.UsrError`, `phase1_9.py`,
`docs/runing.md`, `weights/espcn_x5_y.pt`, `--sed`, `RESBLOK`, `SR_DAT`, `phase1_1.py --set
PRESET=city100`, `--set DATASET=city1000`.

```bash
python -m pipelines.multiblock.aply --weights x.pt
python phase9.py --data DIR
torchrun --nproc_per_node=2 phase1_1.py --sedd 3
```
"""


def test_the_check_passes_real_names_and_prose(project: Project):
    assert problems_in(GOOD, project) == []


def test_the_check_finds_each_kind_of_misspelt_name(project: Project):
    assert [name for _, name, _ in problems_in(BAD, project)] == [
        "core.errorz", "core.errors.UserEror", "data.io.to_flaot(a)", "errors.UsrError", "phase1_9.py",
        "docs/runing.md", "weights/espcn_x5_y.pt", "--sed", "RESBLOK", "SR_DAT", "PRESET=city100",
        "DATASET=city1000", "pipelines.multiblock.aply", "phase9.py", "--sedd"]
