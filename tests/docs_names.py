"""The code names that README.md and docs/*.md give, checked against the code (tests/test_docs.py).

What counts as a name (everything else in backticks is prose: `make demo`, `bf16`, `N_1`, numbers):
- a dotted path into one of the project's packages (`pipelines.multiblock.apply`, `core.errors.UserError`,
  `data.io.to_float(a)`), or one that starts with a module's own name (`run_folder.block_kwargs`): the module
  must import and every later part be an attribute of what comes before;
- a path: a slash in it, or ending in .py/.md/.pt/.json (`phase1_1.py`, `weights/espcn_x3_y.pt`). A .py/.md
  must be a file of the project (a bare name or a tail of its path); another path is checked where its first
  folder is one the project tracks (`weights/`, `docs/`), not where a run writes (`runs/x`, `DIR/...`);
- a `--flag` of a project command: written as a string ('--flag') in the project's .py files or the Makefile;
- an UPPER_CASE name of three or more characters: assigned at module level in the project (a script's
  settings block, a constant), a variable of the Makefile, or a string in the code (environment variables);
- `NAME=value`: NAME as above; PRESET=x must be a preset of the script the same command runs (any script's
  when none is named), and a setting with choices (a ``core.rules`` rule) must be given one of them.
In fenced code blocks only command lines are read: from the project script a line runs (`python X.py`,
`python -m X`, `torchrun ... X.py`) onwards. Values holding a placeholder (<name>, ..., a|b, *) are not checked.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from core.rules import Rule

PACKAGES = ("core", "data", "engine", "inference", "models", "pipelines", "benchmarks", "experiments")
PATH_SUFFIXES = (".py", ".md", ".pt", ".json")
FILE_NAME = re.compile(r"\.(png|jpe?g|csv|log|txt|pth|onnx|safetensors|c|h|toml|ya?ml|html|mp4|mkv|npz)$")
PLACEHOLDER = re.compile(r"[<>*{}|$~]|\.\.\.|://")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE = re.compile(r"(`+)(.+?)\1", re.S)
FLAG = re.compile(r"^--[A-Za-z][\w-]*$")
UPPER = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")
ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
DOTTED = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?:\(.*\))?$")
PYTHON = re.compile(r"^python(3(\.\d+)?)?$")


def spans(markdown: str) -> Iterator[tuple[int, str, bool]]:
    """(line, text, fenced): every inline code span (joined across line breaks) and every fenced line."""
    prose: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(markdown.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            yield number, line.split(" #")[0], True
        else:
            prose.append((number, line))
    text = "\n".join(line for _, line in prose)
    starts = [0]
    for _, line in prose:
        starts.append(starts[-1] + len(line) + 1)
    for match in INLINE.finditer(text):
        line = prose[max(i for i, start in enumerate(starts[:-1]) if start <= match.start())][0]
        yield line, " ".join(match.group(2).split()), False


@dataclass
class Project:
    """What the code offers the docs: files, modules, flags, settings, presets, choices."""

    root: Path
    _presets: dict[Path, dict[str, Any]] = field(default_factory=dict)

    @cached_property
    def files(self) -> list[str]:
        try:
            listed = subprocess.run(["git", "ls-files"], cwd=self.root, capture_output=True, text=True,
                                    check=True).stdout.split()
        except (OSError, subprocess.CalledProcessError):  # not a checkout: every file but hidden ones
            listed = [str(p.relative_to(self.root)) for p in self.root.rglob("*")
                      if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.root).parts)]
        return [name for name in listed if (self.root / name).exists()]

    @cached_property
    def top_level(self) -> set[str]:
        return {name.split("/")[0] for name in self.files}

    @cached_property
    def sources(self) -> dict[str, str]:
        """The project's .py files outside tests/, and the Makefile, by path."""
        return {name: (self.root / name).read_text(encoding="utf-8") for name in self.files
                if (name.endswith(".py") and not name.startswith("tests/")) or name == "Makefile"}

    @cached_property
    def module_names(self) -> dict[str, list[str]]:
        """A module's last name -> its dotted names (`run_folder` -> `pipelines.multiblock.run_folder`)."""
        found: dict[str, list[str]] = {}
        for name in self.sources:
            parts = name.removesuffix(".py").split("/")
            if name.endswith(".py") and parts[0] in PACKAGES and parts[-1] != "__init__":
                found.setdefault(parts[-1], []).append(".".join(parts))
        return found

    @cached_property
    def strings(self) -> set[str]:
        """Every string constant in the project's code: environment variables, the files a run writes."""
        return {node.value for name, text in self.sources.items() if name.endswith(".py")
                for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Constant) and isinstance(node.value, str)}

    @cached_property
    def upper_names(self) -> set[str]:
        """UPPER_CASE names assigned at module level, Makefile variables and UPPER_CASE strings in the code."""
        names = set(self.strings)
        for name, text in self.sources.items():
            if name == "Makefile":
                names.update(re.findall(r"^([A-Z][A-Z0-9_]*)\s*[:?+]?=", text, re.M))
                names.update(re.findall(r"\$\(([A-Z][A-Z0-9_]*)\)", text))
                continue
            tree = ast.parse(text)
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
                    if isinstance(node, ast.AnnAssign) else []
                names.update(t.id for t in targets if isinstance(t, ast.Name))
        return {name for name in names if re.match(r"^[A-Z][A-Z0-9_]*$", name)}

    @cached_property
    def flags(self) -> set[str]:
        return {flag for text in self.sources.values() for flag in re.findall(r"""["'](--[A-Za-z][\w-]*)""", text)}

    @cached_property
    def choices(self) -> dict[str, set[str]]:
        """Every setting with choices in a rules table (a module-level dict of ``core.rules.Rule``)."""
        found: dict[str, set[str]] = {}
        for name, text in self.sources.items():
            if name.endswith(".py") and ("Rule(" in text or "one_of(" in text):
                module = self.load(name)
                for table in vars(module).values() if module else ():
                    if isinstance(table, dict) and table and all(isinstance(r, Rule) for r in table.values()):
                        for setting, rule in table.items():
                            if rule.choices:
                                found.setdefault(setting, set()).update(rule.choices)
        return found

    def load(self, path: str) -> ModuleType | None:
        """The module at ``path`` (a package module by its dotted name, a script by its file)."""
        parts = path.removesuffix(".py").split("/")
        if parts[0] in PACKAGES:
            return importlib.import_module(".".join(p for p in parts if p != "__init__"))
        spec = importlib.util.spec_from_file_location(f"_docs_{'_'.join(parts)}", self.root / path)
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # a script's settings block and imports; its main runs only as __main__
        return module

    def presets(self, script: str | None) -> set[str]:
        """The presets ``script`` accepts: the module-level PRESETS nearest to it along its imports (its own,
        or the pipeline's it hands its settings to); no script: every preset of the project."""
        if script is None:
            return {name for path in self.sources if path.endswith(".py") for name in self.presets(path)}
        if script not in self._presets:
            self._presets[script] = {}
            queue, seen = [script], {script}
            while queue:
                path = queue.pop(0)
                text = self.sources.get(path, "")
                if re.search(r"^PRESETS\b", text, re.M):
                    self._presets[script] = dict(getattr(self.load(path), "PRESETS", {}))
                    break
                for imported in re.findall(r"^\s*(?:from|import) ([\w.]+)", text, re.M):
                    target = imported.replace(".", "/") + ".py"
                    if target in self.sources and target not in seen:
                        seen.add(target)
                        queue.append(target)
        return set(self._presets[script])

    # ------------------------------------------------------------------ the checks: None = fine, else why
    def file(self, token: str) -> str | None:
        """A path under a folder the project tracks must exist; a bare .py/.md name must be a file of the
        project (the tail of its path) or a name its code writes (`table.md`); other paths are a run's."""
        token = token.split("::")[0].rstrip("/")
        if "/" in token and token.split("/")[0] in self.top_level:
            ok = (self.root / token).exists()
        elif "/" not in token and token.endswith((".py", ".md")):
            ok = token in self.strings or any(name == token or name.endswith("/" + token) for name in self.files)
        else:
            return None
        return None if ok else "no such file"

    def dotted(self, token: str) -> str | None:
        first, *rest = token.split(".")
        if first in PACKAGES:
            candidates = [token]
        elif first in self.module_names and first not in sys.stdlib_module_names:
            candidates = [f"{full}.{'.'.join(rest)}" for full in self.module_names[first]]
        else:
            return None
        return None if any(self._resolves(name) for name in candidates) else "no such module or attribute"

    @staticmethod
    def _resolves(name: str) -> bool:
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            module_name = ".".join(parts[:cut])
            try:
                if importlib.util.find_spec(module_name) is None:
                    continue
            except ModuleNotFoundError:  # a name inside a module that is not a package
                continue
            obj: Any = importlib.import_module(module_name)
            for attribute in parts[cut:]:
                if not hasattr(obj, attribute):
                    return False
                obj = getattr(obj, attribute)
            return True
        return False

    def setting(self, name: str) -> str | None:
        return None if name in self.upper_names else "no such setting, constant or environment variable"

    def assignment(self, name: str, value: str, script: str | None) -> str | None:
        value = value.strip("'\"")
        if PLACEHOLDER.search(value) or not value or value.isupper():  # NAME=VALUE, OMP_WAIT_POLICY=PASSIVE
            return None
        if self.setting(name):
            return self.setting(name)
        if name == "PRESET":
            known = self.presets(script)
            return None if value in known else f"no preset {value!r} for {script or 'any script'} " \
                                                  f"(known: {', '.join(sorted(known))})"
        allowed = self.choices.get(name)
        if allowed and not all(item.lower() in allowed for item in value.split(",")):
            return f"expected one of {', '.join(sorted(allowed))}"
        return None


def _script(token: str, project: Project) -> str | None:
    """The project script a command token runs (`phase1_1.py`, `experiments/x.py`), as a path of the project."""
    if not token.endswith(".py"):
        return None
    return next((name for name in project.files if name == token or name.endswith("/" + token)), token)


def problems_in(markdown: str, project: Project) -> list[tuple[int, str, str]]:
    """(line, name, why) for every name in ``markdown`` that the project does not have."""
    found = []
    commands = [(line, [t.strip(",;:") for t in text.split()], fenced) for line, text, fenced in spans(markdown)]
    # Words a command takes as a flag's value (--data DIR) are placeholders wherever this document uses them.
    placeholders = {tokens[i] for _, tokens, _ in commands for i in range(1, len(tokens)) if FLAG.match(tokens[i - 1])}
    for line, tokens, fenced in commands:
        if not tokens:
            continue
        # A command's flags are the project's only from its script on (torchrun's and pip's are not); a fenced
        # line is read from the project script it runs, or from make.
        flags_on = not fenced and (tokens[0].startswith("--") or tokens[0].endswith(".py"))
        started = not fenced or tokens[0] == "make"
        script = None
        for index, token in enumerate(tokens):
            before = tokens[index - 1] if index else ""
            runs_module = (before == "-m" and index >= 2 and bool(PYTHON.match(tokens[index - 2]))
                           and token.split(".")[0] in PACKAGES)  # python -m pipelines.x, not -m pip
            if not started and not (token.endswith(".py") or runs_module):
                continue
            started = True
            if token.endswith(".py") and script is None:
                script = _script(token, project)
                flags_on = True
            if UPPER.match(token) and (len(tokens) > 1 or fenced or token in placeholders):
                continue  # an UPPER_CASE word is a setting's name only alone in its backticks: `RESBLOCK`
            why = classify(token, before, project, script, flags_on)
            if why:
                found.append((line, token, why))
            flags_on = flags_on or runs_module
    return sorted(found, key=lambda problem: problem[0])


def classify(token: str, before: str, project: Project, script: str | None, flags_on: bool) -> str | None:
    """Why ``token`` names nothing of the project (None: it does, or it is not a name)."""
    if not token or PLACEHOLDER.search(token.split("=")[0]):
        return None
    if token.startswith("--"):
        flag = token.split("=")[0]
        return "no such flag" if flags_on and FLAG.match(flag) and flag not in project.flags else None
    if assignment := ASSIGNMENT.match(token):
        return project.assignment(assignment.group(1), assignment.group(2), script)
    if "/" in token or token.endswith(PATH_SUFFIXES):
        return project.file(token)
    if FILE_NAME.search(token):
        return None  # a file a run writes (compare.png, train.log)
    if dotted := DOTTED.match(token):
        if before == "-m" and dotted.group(1).split(".")[0] not in PACKAGES:
            return None  # python -m pip, venv, pytest: not ours
        return project.dotted(dotted.group(1))
    if UPPER.match(token):
        return project.setting(token)
    return None
