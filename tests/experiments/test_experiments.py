"""Every experiment's small preset, shrunk further with --set, runs from a fresh clone: no dataset anywhere
(SOURCE=auto falls back to the photos bundled with scikit-image), and writes its plot and its table."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import experiments.common as common
from core.errors import UserError

pytestmark = pytest.mark.slow  # every experiment runs the phase chain

DATA_AND_ARCH = ["SYNTH_MAX_SIZE=48", "N_FEATS=4", "N_RESBLOCKS=1"]
BLOCK = ["PATCH_SIZE=16", "BATCH_SIZE=2", "ITERS_WARMUP=4", "ITERS_CLAMP_HIGH=2", "ITERS_CLAMP_LOW=2",
         "EVAL_EVERY=4", "VAL_FRACTION=0.2"]
PHASED = [*DATA_AND_ARCH, *BLOCK, "ITERS_HIGH=4", "ITERS_LOW=2"]


def sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def run(name: str, out: Path, items: list[str]) -> str:
    """``python experiments/<name>.py --out OUT --set ...`` in-process; returns table.md."""
    common.load_script(f"experiments/{name}.py").main(["--out", str(out), "--device", "cpu", *sets(items)])
    assert (out / f"{name}.png").stat().st_size > 0
    assert json.loads((out / "results.json").read_text())["settings"]["PRESET"] == "small"
    return (out / "table.md").read_text()


def table_rows(table: str) -> list[str]:
    """First cells of the body rows of every markdown table in ``table`` (headers left out)."""
    lines = table.splitlines()
    return [line.split("|")[1].strip() for line, following in zip(lines, [*lines[1:], ""], strict=True)
            if line.startswith("| ") and not following.startswith("|---")]


@pytest.fixture(autouse=True)
def fresh_clone(monkeypatch, tmp_path):
    """No T91/Set14 anywhere, one thread (tiny convolutions gain nothing from more on a shared CPU)."""
    monkeypatch.delenv("SR_DATA", raising=False)
    monkeypatch.setattr(common, "SHARED_DATASETS", tmp_path / "no-shared-datasets")
    monkeypatch.chdir(tmp_path)  # ./datasets does not exist here either
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def phased_run(tmp_path) -> tuple[Path, str]:
    out = tmp_path / "phases"
    return out, run("phases_vs_end_to_end", out, [*PHASED, "E2E_ITERS_HIGH=6"])


def test_phases_vs_end_to_end(phased_run):
    out, table = phased_run
    rows = table_rows(table)
    for label in ("identity (the LR input)", "phased, after phase 1 (N_1)", "**phased (after phase 4)**",
                  "**end to end (fresh N)**", "phased − end to end"):
        assert label in rows, (label, rows)
    results = json.loads((out / "results.json").read_text())
    assert results["iterations"]["e2e"] == 8 + 6  # one block's iterations + phase 4's: equal updates
    assert "photos bundled with scikit-image" in results["data"]["source"]
    assert (out / "seed0" / "end_to_end" / "N.pt").exists() and not (out / "seed0" / "end_to_end" / "N1.pt").exists()


def test_phase_curves_and_inverse_reuses_a_phased_run(phased_run, tmp_path):
    run_dir = phased_run[0] / "seed0" / "phased"
    out = tmp_path / "curves"
    rows = table_rows(run("phase_curves_and_inverse", out, [f"PHASED_RUN={run_dir}", "STRIP_CROP=32"]))
    for label in ("after phase 1: N_1", "after phase 4: N trained end to end", "N_1(x)", "N_3(N_2(N_1(x)))"):
        assert label in rows, (label, rows)
    assert (out / "inverse_strip.png").stat().st_size > 0
    assert not (out / "run").exists()


def test_phase_curves_and_inverse_trains_its_own_run(tmp_path):
    out = tmp_path / "curves"
    rows = table_rows(run("phase_curves_and_inverse", out, [*PHASED, "STRIP_CROP=0"]))
    assert "after phase 3: N_3(N_2(N_1))" in rows and (out / "run" / "N.pt").exists()
    assert (out / "inverse_strip.png").stat().st_size > 0


def test_toy_blockwise_two_seeds(tmp_path):
    out = tmp_path / "toy"
    table = run("toy_blockwise", out, ["SYNTH_MAX_SIZE=48", "N_FEATS=4", "PATCH_SIZE=16", "BATCH_SIZE=2",
                                       "ITERS_BLOCK=4", "ITERS_COMBINED=2", "ITERS_PER_EPOCH=2", "REPEATS=2"])
    rows = table_rows(table)
    for label in ("N_1 alone (block 1)", "**block-wise, then combined**", "**deep N, end to end**", "0", "1"):
        assert label in rows, (label, rows)
    assert " ± " in table  # two seeds: mean ± sd
    log = (out / "seed1" / "log_deep.csv").read_text().splitlines()
    assert len(log) == 1 + 3  # header + one row per epoch (6 updates, 2 per epoch)


def test_patch_size(tmp_path):
    out = tmp_path / "patch"
    rows = table_rows(run("patch_size", out, [*DATA_AND_ARCH, "PATCH_SIZES=8,16", "ITERS=4", "EVAL_EVERY=2",
                                             "BATCH_SIZE=2", "EQUAL=pixels"]))
    assert rows[:3] == ["identity (the LR input)", "8x8", "16x16"]
    results = json.loads((out / "results.json").read_text())
    assert results["receptive_field"] == 2 * (1 + 2 + 1 + 1) + 1
    assert json.loads((out / "seed0" / "patch8" / "settings.json").read_text())["N1"]["BATCH_SIZE"] == 8


def test_gradient_loss(tmp_path):
    out = tmp_path / "grad"
    rows = table_rows(run("gradient_loss", out, [*DATA_AND_ARCH, *BLOCK, "GRAD_WEIGHTS=0,1"]))
    assert rows[:3] == ["identity (the LR input)", "L1 alone", "L1 + 1 x gradient"]
    settings = json.loads((out / "seed0" / "w1" / "settings.json").read_text())["N1"]
    assert settings["LOSS"] == "l1 + 1.0*grad"


def test_a_misspelt_choice_stops_before_any_work(tmp_path):
    with pytest.raises(UserError, match="EQUAL"):
        common.load_script("experiments/patch_size.py").main(["--out", str(tmp_path / "x"), "--set", "EQUAL=pixel"])
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("value, expected", [("SOURCE=photos", r"^SOURCE='photos': expected one of auto, t91, skimage"),
                                             ("REPEATS=0", r"^REPEATS=0: expected an integer >= 1")])
def test_the_shared_experiment_settings_are_checked_by_one_rule_table(tmp_path, value, expected):
    with pytest.raises(UserError, match=expected):
        common.load_script("experiments/patch_size.py").main(["--out", str(tmp_path / "x"), "--set", value])
    assert not (tmp_path / "x").exists()


def test_scaling_summary_reads_each_budget_and_plots_the_gap(phased_run, tmp_path):
    """The summary of a budget is the phased - end to end gap of its run, per seed and as mean."""
    root = tmp_path / "scaling"
    budget = root / "small-shaped"
    budget.mkdir(parents=True)
    (budget / "results.json").write_text((phased_run[0] / "results.json").read_text())
    results = json.loads((budget / "results.json").read_text())
    run0 = results["per_seed"]["0"]
    gap = run0["phased"]["psnr_rgb_report"] - run0["end_to_end"]["psnr_rgb_report"]
    out = tmp_path / "summary"
    common.load_script("experiments/scaling_summary.py").main(["--out", str(out), "--set", f"ROOT={root}"])
    summary = json.loads((out / "results.json").read_text())["budgets"]
    assert [row["budget"] for row in summary] == ["small-shaped"]  # medium and large not run: skipped
    assert summary[0]["gaps"] == pytest.approx([gap]) and summary[0]["compute"] == pytest.approx(
        results["iterations"]["phased_compute"] * (4 / 16) ** 2)  # the test's blocks have 4 features
    assert (out / "scaling.png").stat().st_size > 0
    with pytest.raises(UserError, match="no budget has results under"):
        common.load_script("experiments/scaling_summary.py").main(["--out", str(out), "--set",
                                                                   f"ROOT={tmp_path / 'none'}"])
