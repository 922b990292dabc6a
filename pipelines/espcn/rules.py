"""What each ``espcn.py`` setting may be (``core.rules``), checked before anything is read or written."""
from __future__ import annotations

from typing import Any

from core.errors import UserError
from core.rules import EMA_RULE, Rule, at_least, between, check_settings, fraction, one_of, positive
from engine.losses import LOSS_RULE
from engine.speed import SPEED_RULES
from inference.video import X264_PRESETS

RULES: dict[str, Rule] = {
    "SCALE": between(2, 8), "CHANNELS": one_of("1", "3"), "FEATURES": Rule(low=1, nonempty=True),
    "VAL_FRACTION": fraction(), "DEGRADATION": one_of("bicubic", "gaussian"), "BLUR_SIGMA": positive(),
    "SUBIMAGE": at_least(3), "STRIDE": at_least(1), "SUBIMAGE_OFFSETS": one_of("grid", "random"),
    "HR_SCALES": Rule(low=0, high=1, low_open=True, nonempty=True), "EPOCHS": at_least(1),
    "BATCH_SIZE": at_least(1), "OPTIMIZER": one_of("adam", "sgd"), "MOMENTUM": fraction(),
    "SCHEDULE": one_of("cosine", "plateau"), "LR_START": positive(), "LR_END": positive(), "MU": at_least(0),
    "LR_FACTOR": Rule(low=1, low_open=True), "COOLDOWN": at_least(0), "PATIENCE": at_least(1),
    "LAST_LAYER_LR": positive(), "LOSS": LOSS_RULE, "EMA": EMA_RULE, **SPEED_RULES,
    "EVAL_TILE": at_least(8), "INFERENCE": one_of("auto", "ort", "strips", "channels_last", "eager"),
    "UPSCALE_PRECISION": one_of("auto", "fp32", "bf16", "fp16"),
    "PNG_LEVEL": between(0, 9), "VIDEO_CRF": between(0, 51), "VIDEO_PRESET": one_of(*X264_PRESETS),
}


def check_espcn_settings(settings: dict[str, Any], defaults: dict[str, Any]) -> None:
    """The rules, and what no single rule says: two feature widths, LR_END <= LR_START (PRESET's name is
    checked where the preset is applied, ``core.settings.resolve_settings``)."""
    check_settings(settings, RULES, defaults)
    if "FEATURES" in settings and len(settings["FEATURES"]) != 2:
        raise UserError(f"FEATURES={','.join(map(str, settings['FEATURES']))}: expected two widths, e.g. 64,32 "
                        "(the first two layers)")
    if "LR_START" in settings and settings["LR_END"] > settings["LR_START"]:
        raise UserError(f"LR_END={settings['LR_END']} is above LR_START={settings['LR_START']}: the rate decays "
                        "from LR_START to LR_END")
