"""Every setting of every script is checked before any work: each numeric setting has a range, each bad value
(below it, above it) is one error line naming the setting, the value and the range, and nothing is written."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import UserError
from core.rules import Rule
from core.settings import collect_settings
from models.blocks import block_settings
from pipelines.espcn.cli import UPSCALE_ONLY
from pipelines.espcn.rules import RULES as ESPCN_RULES
from pipelines.multiblock.chain import FIRST
from pipelines.multiblock.chain import SCRIPTS as PHASE_SCRIPTS
from pipelines.multiblock.phase_settings import RULES
from pipelines.multiblock.resolve import resolve_run
from tests.scripts.helpers import load_script

ESPCN = collect_settings(vars(load_script("espcn.py")))
LOSS_FORM = "expected terms [weight*]name joined by '+', e.g. 'l1 + 0.1*grad'; terms: l1, mse, grad, ssim"


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def numeric(settings: dict) -> list[str]:
    """The settings whose value is a number or a list of numbers."""
    return [name for name, value in settings.items()
            if is_number(value) or (isinstance(value, (list, tuple)) and value and all(map(is_number, value)))]


def bad_values(rule: Rule, default) -> list:
    """Values just outside the rule's range, of the default's type (a list setting gets one bad item)."""
    item = default[0] if isinstance(default, (list, tuple)) else default
    step = 1 if isinstance(item, int) else 0.5
    values = []
    if rule.low is not None:
        values.append(type(item)(rule.low) if rule.low_open else type(item)(rule.low - step))
    if rule.high is not None:
        values.append(type(item)(rule.high) if rule.high_open else type(item)(rule.high + step))
    return [[*default[:-1], v] if isinstance(default, (list, tuple)) else v for v in values]


def text(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


PHASE_CASES = [(script, name, value) for script in PHASE_SCRIPTS
               for name, default in collect_settings(vars(load_script(script))).items()
               if numeric({name: default}) for value in bad_values(RULES[name], default)]
PHASE_CASES += [(FIRST.script, name, value) for name, setting in block_settings().items()  # declared in models/blocks
                for value in bad_values(RULES[name], setting.default)]
ESPCN_CASES = [(name, value) for name in numeric(ESPCN) for value in bad_values(ESPCN_RULES[name], ESPCN[name])]


def test_every_numeric_setting_of_every_script_has_a_range():
    for script in PHASE_SCRIPTS:
        block = collect_settings(vars(load_script(script)))
        assert set(numeric(block)) <= set(RULES), script
    assert set(numeric(ESPCN)) <= set(ESPCN_RULES)
    tried = {name for _script, name, _value in PHASE_CASES} | {name for name, _value in ESPCN_CASES}
    ranged = {name for name, rule in {**RULES, **ESPCN_RULES}.items() if not rule.choices and rule.parse is None}
    assert ranged <= tried  # every range is tried from outside at least once


@pytest.mark.parametrize(("script", "name", "value"), PHASE_CASES)
def test_a_bad_phase_setting_is_one_line_before_anything_is_written(tmp_path: Path, script, name, value):
    run = tmp_path / "run"
    with pytest.raises(UserError) as refused:
        resolve_run(vars(load_script(script)), ["--out", str(run), "--set", f"{name}={text(value)}"], script)
    message = str(refused.value)
    assert message.startswith(f"{name}={text(value)}: expected ") and "\n" not in message
    assert not run.exists()


@pytest.mark.parametrize(("name", "value"), ESPCN_CASES)
def test_a_bad_espcn_setting_is_one_line_before_anything_is_written(tmp_path: Path, name, value):
    run = tmp_path / "run"
    with pytest.raises(UserError) as refused:
        command = ["upscale", "photo.png"] if name in UPSCALE_ONLY else ["train", "--dry-run"]
        load_script("espcn.py").main([*command, "--out", str(run), "--set", f"{name}={text(value)}"])
    message = str(refused.value)
    assert message.startswith(f"{name}={text(value)}: expected ") and "\n" not in message
    assert not run.exists()


@pytest.mark.parametrize(("script", "setting", "message"), [
    ("phase1_1.py", "BATCH_SIZE=0", "BATCH_SIZE=0: expected an integer >= 1 (--set BATCH_SIZE=...)"),
    ("phase2_1.py", "LR_CLAMP_HIGH=-0.1", "LR_CLAMP_HIGH=-0.1: expected a number > 0 (--set LR_CLAMP_HIGH=...)"),
    ("phase1_1.py", "VAL_FRACTION=1.5", "VAL_FRACTION=1.5: expected a number in [0, 1) (--set VAL_FRACTION=...)"),
    ("phase4.py", "INIT=inherit", "INIT='inherit': expected one of blocks, fresh (--set INIT=...)"),
    ("phase3.py", "LOSS=huber", f"LOSS='huber': unknown term 'huber'; {LOSS_FORM} (--set LOSS=...)"),
    ("phase2_1.py", "LOSS=l1 + -0.1*ssim",
     f"LOSS='l1 + -0.1*ssim': the weight of 'ssim' must be a number > 0, got '-0.1'; {LOSS_FORM} (--set LOSS=...)"),
    ("phase1_1.py", "PRECISION=fp8",
     "PRECISION='fp8': expected one of auto, fp32, fp32_strict, bf16, fp16 (--set PRECISION=...)"),
])
def test_choices_and_the_issues_examples_are_named_with_what_is_allowed(tmp_path: Path, script, setting, message):
    with pytest.raises(UserError) as refused:
        resolve_run(vars(load_script(script)), ["--out", str(tmp_path / "run"), "--set", setting], script)
    assert str(refused.value) == message


def test_espcn_cross_checks_and_the_issues_examples(tmp_path: Path):
    for setting, message in [
        ("BATCH_SIZE=0", "BATCH_SIZE=0: expected an integer >= 1 (--set BATCH_SIZE=...)"),
        ("SUBIMAGE=0", "SUBIMAGE=0: expected an integer >= 3 (--set SUBIMAGE=...)"),
        ("LR_START=-0.1", "LR_START=-0.1: expected a number > 0 (--set LR_START=...)"),
        ("VAL_FRACTION=1.5", "VAL_FRACTION=1.5: expected a number in [0, 1) (--set VAL_FRACTION=...)"),
        ("FEATURES=64,32,16", "FEATURES=64,32,16: expected two widths, e.g. 64,32 (the first two layers)"),
        ("LR_END=0.5", "LR_END=0.5 is above LR_START=0.003: the rate decays from LR_START to LR_END"),
        ("LOSS=mse+ssmi", f"LOSS='mse+ssmi': unknown term 'ssmi'; {LOSS_FORM} (--set LOSS=...)"),
    ]:
        with pytest.raises(UserError) as refused:
            load_script("espcn.py").main(["train", "--out", str(tmp_path / "run"), "--set", setting])
        assert str(refused.value) == message
    assert not (tmp_path / "run").exists()


def test_the_squeeze_must_leave_a_channel(tmp_path: Path):
    with pytest.raises(UserError, match=r"^REDUCTION=32: the channel attention squeezes N_FEATS=16 channels"):
        resolve_run(vars(load_script("phase1_1.py")), ["--out", str(tmp_path), "--set", "N_FEATS=16",
                                                           "--set", "REDUCTION=32"], "phase1_1.py")


def test_a_sum_of_loss_terms_is_a_phase_setting(tmp_path: Path):
    ctx = resolve_run(vars(load_script("phase2_1.py")), ["--out", str(tmp_path / "run"), "--dry-run", "--set",
                                                        "LOSS=l1 + 0.1*grad + 0.2*ssim"], "phase2_1.py")
    assert ctx.settings["LOSS"] == "l1 + 0.1*grad + 0.2*ssim"


@pytest.mark.precision
def test_bf16_where_it_cannot_run_stops_a_phase_script_before_anything_is_written(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SR_CPU_BF16", "off")  # as on an AVX2-only CPU
    with pytest.raises(UserError, match=r"^PRECISION=bf16: bf16 is switched off \(SR_CPU_BF16=off\)"):
        resolve_run(vars(load_script("phase1_1.py")), ["--out", str(tmp_path / "run"), "--set", "PRECISION=bf16",
                                                       "--device", "cpu"], "phase1_1.py")
    assert not (tmp_path / "run").exists()
