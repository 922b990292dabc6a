"""Edit, rerun, compare: a finished phase rerun with equal settings is "already done", with other settings it
is refused in one line; --redo archives it and what was made from it and runs it again; --from branches a
new run folder from another's finished phases; --dry-run prints and writes nothing; the runs compare."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.errors import UserError
from data.datasets import bundled_photos
from data.synth import synthesise_realsr
from pipelines.multiblock import compare
from tests.scripts.helpers import load_script

pytestmark = pytest.mark.slow  # phase scripts in process, a few seconds each

TINY = ["--set", "PRESET=tiny", "--set", "TEST_CURVE=false"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("realsr")
    synthesise_realsr(root, bundled_photos("train"), bundled_photos("test"), max_size=64)
    return root


def run(script: str, data: Path, out: Path, *extra: str, edits: dict | None = None) -> None:
    """``python <script> --data DATA --out OUT ...`` in process, with ``edits`` written at the top of the file."""
    module = load_script(script)
    for name, value in (edits or {}).items():
        setattr(module, name, value)
    module.main(["--data", str(data), "--out", str(out), "--device", "cpu", *TINY, *extra])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run_a(data: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "A"
    for script in ("phase1_1.py", "phase1_2.py", "phase2_1.py"):
        run(script, data, out)
    return out


def test_equal_settings_are_already_done_and_other_settings_are_one_line(run_a: Path, data: Path, capsys):
    before = snapshot(run_a)
    run("phase2_1.py", data, run_a)
    assert "phase2_1.py: already done in" in capsys.readouterr().out
    assert snapshot(run_a) == before  # nothing rewritten
    with pytest.raises(UserError) as refused:  # LOSS is not one the tiny preset sets: the edit stands
        run("phase2_1.py", data, run_a, edits={"LOSS": "mse"})
    assert str(refused.value).startswith(f"phase2_1.py already finished in {run_a} with other settings: "
                                         "LOSS='l1' there, 'mse' now; pass --redo to archive")
    assert snapshot(run_a) == before


def test_a_run_recorded_with_grad_loss_weight_compares_as_its_loss_term(run_a: Path, data: Path, tmp_path: Path,
                                                                       capsys):
    """Run folders from before LOSS had terms record GRAD_LOSS_WEIGHT beside LOSS: 0 is LOSS alone, w adds w*grad."""
    old = tmp_path / "old"
    shutil.copytree(run_a, old)

    def record(weight: float) -> None:
        settings = json.loads((old / "settings.json").read_text())
        settings["N2"].update(LOSS="l1", GRAD_LOSS_WEIGHT=weight)
        (old / "settings.json").write_text(json.dumps(settings))

    record(0.0)
    run("phase2_1.py", data, old)
    assert "phase2_1.py: already done in" in capsys.readouterr().out
    record(0.5)
    run("phase2_1.py", data, old, edits={"LOSS": "L1+0.5*grad"})
    assert "phase2_1.py: already done in" in capsys.readouterr().out
    with pytest.raises(UserError) as refused:
        run("phase2_1.py", data, old)
    assert "with other settings: LOSS='l1 + 0.5*grad' there, 'l1' now; pass --redo" in str(refused.value)
    (old / "N2.pt").unlink()  # interrupted: N2_latest.pt only
    with pytest.raises(UserError) as refused:
        run("phase2_1.py", data, old, "--resume")
    assert str(refused.value).startswith(f"--resume continues the run in {old / 'N2_latest.pt'}, which started with "
                                         "other settings: LOSS='l1 + 0.5*grad' there, 'l1' now;")
    run("phase2_1.py", data, old, "--resume", edits={"LOSS": "l1 + 0.5*grad"})
    assert (old / "N2.pt").exists()
    assert json.loads((old / "settings.json").read_text())["N2"]["LOSS"] == "l1 + 0.5*grad"


def test_redo_archives_the_phase_and_leaves_phase_1_untouched(run_a: Path, data: Path, tmp_path: Path):
    run_b = tmp_path / "B"  # first a branch of the run as it is: it keeps phase 2 trained with l1
    run("phase2_2.py", data, run_b, "--from", str(run_a), edits={})
    phase1 = {name: data for name, data in snapshot(run_a).items() if "N1" in name or name.startswith("LR_1")}
    old_n2 = (run_a / "N2.pt").read_bytes()
    run("phase2_1.py", data, run_a, "--redo", edits={"LOSS": "mse"})
    assert {name: data for name, data in snapshot(run_a).items() if name in phase1} == phase1  # byte for byte
    archived = next((run_a / "archive").iterdir())
    assert (archived / "N2.pt").read_bytes() == old_n2 != (run_a / "N2.pt").read_bytes()
    assert json.loads((archived / "settings.json").read_text())["N2"]["LOSS"] == "l1"
    assert set(json.loads((archived / "results.json").read_text())) == {"phase2"}
    assert json.loads((run_a / "settings.json").read_text())["N2"]["LOSS"] == "mse"
    assert json.loads((archived / "archive.json").read_text())["redone_by"] == "phase2_1.py"
    # the branch made before the redo: phase 1 linked from A, phase 2 its own, LR_2 written
    assert (run_b / "N1.pt").stat().st_ino == (run_a / "N1.pt").stat().st_ino
    assert json.loads((run_b / "run.json").read_text())["branched_from"]["run"] == str(run_a.resolve())
    assert json.loads((run_b / "LR_2" / "manifest.json").read_text())["complete"]
    text, rows = compare.table([run_a, run_b, archived], "psnr_rgb")
    assert [sorted(k for k in row if k.startswith("phase")) for row in rows] == [
        ["phase1", "phase2"], ["phase1", "phase2"], ["phase2"]]
    assert text.count("\n") == 4 and str(archived) in text


def test_a_branch_trains_only_its_phase_with_new_values(run_a: Path, data: Path, tmp_path: Path):
    before = snapshot(run_a)
    branch = tmp_path / "C"
    run("phase2_1.py", data, branch, "--from", str(run_a), edits={"LOSS": "l1 + 0.5*grad"})
    assert snapshot(run_a) == before
    assert json.loads((branch / "settings.json").read_text())["N2"]["LOSS"] == "l1 + 0.5*grad"
    assert set(json.loads((branch / "results.json").read_text())) == {"phase1", "phase2"}
    rows = [line for line in (branch.parent / "results.csv").read_text().splitlines()[1:] if str(branch) in line]
    assert len(rows) == 1 and ",phase2,phase2_1.py," in rows[0]  # one row: only phase 2 trained there


def test_a_dry_run_prints_the_settings_and_their_origins_and_writes_nothing(data: Path, tmp_path: Path, capsys):
    out = tmp_path / "new"
    run("phase1_1.py", data, out, "--dry-run", "--set", "ITERS_WARMUP=9")
    printed = capsys.readouterr().out
    assert "ITERS_WARMUP = 9" in printed and "<- --set" in printed and "<- preset tiny" in printed
    assert "dry run: would run phase1_1.py (nothing was written)" in printed
    assert not out.exists()


def test_resume_with_other_settings_than_the_interrupted_run_is_refused(run_a: Path, data: Path, tmp_path: Path):
    out = tmp_path / "D"
    run("phase1_1.py", data, out)
    (out / "N1.pt").unlink()  # as if the run had stopped before its end
    with pytest.raises(UserError, match=r"^--resume continues the run in .*N1_latest.pt, which started with other "
                                        r"settings: LR_WARMUP=0.002 there, 0.001 now"):
        run("phase1_1.py", data, out, "--resume", "--set", "LR_WARMUP=0.001")
