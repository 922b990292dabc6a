"""`espcn.py` subcommands: each lists and accepts only the settings it reads; the block is the best recipe."""
from __future__ import annotations

import pytest

from core.errors import UserError
from pipelines.espcn.cli import READS, run, subcommand_settings
from tests.scripts.helpers import load_script, run_script

ESPCN = vars(load_script("espcn.py"))


def test_the_block_as_written_is_the_best_preset():
    for name, value in ESPCN["PRESETS"]["best"].items():
        assert ESPCN[name] == value, name
    assert ESPCN["PRESET"] == "none" and ESPCN["PRESETS"]["paper"]["DEGRADATION"] == "gaussian"


def test_eval_and_upscale_read_only_their_settings():
    assert list(subcommand_settings(ESPCN, "eval")) == list(READS["eval"])
    train = subcommand_settings(ESPCN, "train")
    assert "SCALE" in train and "UPSCALE_PRECISION" not in train
    with pytest.raises(UserError, match=r"--set EPOCHS: espcn\.py eval does not read this setting; it reads "
                                        r"SCALE, CHANNELS, FEATURES, EVAL_SETS, EVAL_TILE"):
        run(ESPCN, ["eval", "--set", "EPOCHS=2"])


UP = "UPSCALE_PRECISION="


@pytest.mark.parametrize(("command", "present", "absent"), [
    ("eval", ["EVAL_SETS=", "--weights", "--data", "SCALE=", "SELF_ENSEMBLE="],
     ["EPOCHS=", "--seed", "--resume", "presets", UP]),
    ("export", ["--format", "--weights", "FEATURES="], ["EVAL_SETS=", "--data", "--seed", "--resume", UP]),
    ("upscale", [UP, "VIDEO_CRF=", "--weights", "inputs", "SELF_ENSEMBLE="],
     ["EVAL_SETS=", "--data", "--seed", "--resume"]),
    ("train", ["SCALE=", "--resume", "--config", "paper: AUGMENT=false"], [UP, "--weights", "SELF_ENSEMBLE="]),
])
def test_subcommand_help_lists_what_it_uses(command, present, absent):
    done = run_script("espcn.py", command, "--help")
    assert done.returncode == 0
    for text in present:
        assert text in done.stdout, (command, text)
    for text in absent:
        assert text not in done.stdout, (command, text)
