from pathlib import Path

import pytest

from core.errors import UserError
from core.settings import collect_settings, parse_assignments, parse_cli, parse_value, setting_comments

SETTINGS = {"EPOCHS": 10, "LR": 0.01, "AUGMENT": False, "NAME": "T91", "SETS": ["Set5", "Set14"],
            "SIZES": [24, 48]}


def test_collect_settings_keeps_upper_case_plain_values_in_order():
    namespace = {"EPOCHS": 3, "lower": 1, "_HIDDEN": 2, "PRESETS": {"a": 1}, "LR": 0.1, "main": print}
    assert list(collect_settings(namespace)) == ["EPOCHS", "LR"]


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("EPOCHS", "7", 7), ("LR", "1e-4", 1e-4), ("AUGMENT", "true", True), ("AUGMENT", "0", False),
    ("NAME", "Set14", "Set14"), ("SETS", "a, b,c", ["a", "b", "c"]), ("SIZES", "24,96", [24, 96]),
])
def test_parse_value_uses_the_type_of_the_default(name, text, expected):
    assert parse_value(name, SETTINGS[name], text) == expected


@pytest.mark.parametrize(("assignment", "message"), [
    ("EPOCHS=ten", "expected int"), ("AUGMENT=maybe", "expected true/false"),
    ("SIZES=24,big", "comma-separated list of int"), ("EPOCH=3", "unknown setting"), ("EPOCHS", "NAME=VALUE"),
])
def test_bad_overrides_are_user_errors(assignment, message):
    with pytest.raises(UserError, match=message):
        parse_assignments(SETTINGS, [assignment])


def test_parse_cli_resolves_common_flags(tmp_path: Path, monkeypatch):
    script = tmp_path / "script.py"
    script.write_text("EPOCHS = 10  # how long (paper)\n")
    monkeypatch.setenv("SR_DATA", str(tmp_path))
    ctx = parse_cli({"__file__": str(script), "EPOCHS": 10}, ["--set", "EPOCHS=4", "--device", "cpu",
                                                            "--seed", "3", "--resume"], "doc", "runs/x")
    assert ctx.settings == {"EPOCHS": 4}
    assert (ctx.data_root, ctx.out, ctx.device.type, ctx.seed, ctx.resume) == (tmp_path, Path("runs/x"),
                                                                               "cpu", 3, True)
    assert setting_comments(script) == {"EPOCHS": "how long (paper)"}


def test_unknown_flag_is_one_line_and_exit_2(tmp_path: Path, capsys):
    script = tmp_path / "script.py"
    script.write_text("EPOCHS = 10\n")
    with pytest.raises(SystemExit) as exit_info:
        parse_cli({"__file__": str(script), "EPOCHS": 10}, ["--bogus"], "doc", "runs/x")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: unrecognized arguments: --bogus")


# ------------------------------------------------------------------------------ presets and --config
def script_namespace(tmp_path: Path) -> dict:
    script = tmp_path / "script.py"
    script.write_text('PRESET = "none"  # which preset\nEPOCHS = 10  # how long\nLR = 0.01  # rate\n'
                      'SETS = ["Set5"]  # sets\n')
    return {"__file__": str(script), "PRESET": "none", "EPOCHS": 10, "LR": 0.01, "SETS": ["Set5"],
            "PRESETS": {"none": {}, "short": {"EPOCHS": 2, "LR": 0.1}}}


def test_block_then_preset_then_config_then_set(tmp_path: Path):
    namespace = script_namespace(tmp_path)
    config = tmp_path / "settings.json"
    config.write_text('{"PRESET": "short", "LR": 0.5, "SETS": ["Set14", "B100"], "seed": 4, "data": "/x"}')
    ctx = parse_cli(namespace, ["--config", str(config), "--set", "SETS=Urban100"], "doc", "runs/x")
    assert ctx.settings == {"PRESET": "short", "EPOCHS": 2, "LR": 0.5, "SETS": ["Urban100"]}
    assert ctx.seed == 4 and ctx.origins["seed"] == f"--config {config}"
    assert ctx.given == {"PRESET": "short", "LR": 0.5, "SETS": ["Urban100"]}
    assert parse_cli(namespace, ["--config", str(config), "--seed", "1"], "doc", "runs/x").seed == 1


def test_a_multiblock_config_gives_the_section_of_the_script(tmp_path: Path):
    from core.settings import read_config

    config = tmp_path / "settings.json"
    config.write_text('{"N1": {"EPOCHS": 3, "seed": 2}, "N2": {"EPOCHS": 5}}')
    assert read_config(config, {"EPOCHS": 10}, "N2") == ({"EPOCHS": 5}, None)
    assert read_config(config, {"EPOCHS": 10}, "N1") == ({"EPOCHS": 3}, 2)
    with pytest.raises(UserError, match=r"has no 'N3' section \(it has: N1, N2\)"):
        read_config(config, {"EPOCHS": 10}, "N3")


@pytest.mark.parametrize(("content", "message"), [
    ('{"EPOCH": 3}', "unknown setting EPOCH"), ('{"EPOCHS": "ten"}', "EPOCHS='ten' does not fit"),
    ('{"EPOCHS": 2.5}', "does not fit"), ("{broken", "not valid JSON"),
])
def test_bad_config_files_are_user_errors(tmp_path: Path, content, message):
    config = tmp_path / "settings.json"
    config.write_text(content)
    with pytest.raises(UserError, match=message):
        parse_cli(script_namespace(tmp_path), ["--config", str(config)], "doc", "runs/x")


def test_help_shows_what_each_preset_sets(tmp_path: Path, capsys):
    with pytest.raises(SystemExit):
        parse_cli(script_namespace(tmp_path), ["--help"], "doc", "runs/x")
    out = capsys.readouterr().out
    assert "EPOCHS=10  how long" in out and "short: EPOCHS=2 LR=0.1" in out and "none: (the settings as written)" in out
