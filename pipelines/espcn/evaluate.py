"""``espcn.py eval``: score a checkpoint on benchmark HR folders beside bicubic."""
from __future__ import annotations

from core.runs import prepare_run_dir, write_json
from core.settings import (
    RunContext,
)
from engine.report import metrics_table
from inference.scoring import score_scaled_set
from pipelines.espcn.common import load_espcn, load_set, protocol_text, weights_path


def evaluate(ctx: RunContext) -> None:
    path = weights_path(ctx)
    net = load_espcn(path, ctx.device, ctx.settings)
    sets = {name: load_set(ctx, name) for name in ctx.settings["EVAL_SETS"]}
    metrics = {name: score_scaled_set(net, images, scale=net.scale, channels=net.channels, device=ctx.device,
                                      tile=ctx.settings["EVAL_TILE"])
               for name, images in sets.items()}
    print(f"{path} (x{net.scale}, {'Y' if net.channels == 1 else 'RGB'}); {protocol_text(net.scale)}")
    print(metrics_table(metrics))
    if ctx.args.out:
        out = prepare_run_dir(ctx.out)
        write_json(out / "eval.json", {"weights": str(path), "metrics": metrics,
                                       "protocol": protocol_text(net.scale)})
