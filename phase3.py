"""Phase 3: train block N_3 on (LR_2, HR), initialised from N_2, then write LR_3/ with N_3^+.

Needs N2.pt and LR_2/ (phase2_1.py, phase2_2.py). Writes N3.pt, N3_latest.pt, N3_best.pt, log_N3.csv,
curves_N3.png, the "phase3" entry of results.json, and LR_3/. Next: phase4.py.
"""
from __future__ import annotations

# ----------------------------------------------------------------------------------- settings
# Run-wide settings (DATASET, CAMERA, SCALE, the block architecture, VAL_FRACTION, PRESET, ...) are set in phase1_1.py
# and read from the run folder's run.json; all phase settings are accepted here (see --help).
# This phase:
PATCH_SIZE = 48  # training patch side (report: 48)
BATCH_SIZE = 16  # patches per iteration, split across torchrun ranks (report: 16)
INIT = "inherit"  # inherit = start from N2.pt (report 4.2) | fresh = orthogonal init
ITERS_WARMUP = 2000  # stage A: unclamped warm-up iterations (report: 2000)
WARMUP_OPTIMIZER = "adadelta"  # adadelta (report) | adam (the report's code)
LR_WARMUP = 1.0  # warm-up learning rate (report: Adadelta lr=1; use 1e-4 with adam)
ITERS_CLAMP_HIGH = 3000  # stage B: clamped N_3^+, Adam (report: 3000)
LR_CLAMP_HIGH = 1e-4  # (report: 1e-4)
ITERS_CLAMP_LOW = 10000  # stage C: clamped, Adam (report: 10000)
LR_CLAMP_LOW = 1e-5  # (report: 1e-5)
LOSS = "l1"  # terms [weight*]name joined by +, e.g. "l1 + 0.1*grad": l1 (report), mse, grad (report sec. 6), ssim
EVAL_EVERY = 500  # iterations between evaluations and checkpoints (ours)
SELECT = "best-val"  # best-val = weights of the best validation evaluation | last
EMA = 0.0  # > 0: validate, select and save an average of the weights, decay per step, e.g. 0.999 (ours)
TEST_CURVE = True  # also score the test pairs at each evaluation, for the Fig. 8 curves (never for selection)
SELF_ENSEMBLE = False  # also score the test pairs with the x8 self-ensemble: "model+" beside "model" (8x; ours)
PRECISION = "auto"  # auto (bf16 where measured faster) | fp32 (TF32 convs on GPUs) | fp32_strict | bf16 | fp16 (CUDA)
CHANNELS_LAST = "auto"  # channels_last memory format for training: auto (on where measured faster) | true | false
COMPILE = False  # torch.compile the training network (CUDA; the first iterations pay for compiling)
DETERMINISTIC = False  # deterministic kernels, TF32 and cudnn.benchmark off: bit-exact reruns (slower)
TENSORBOARD = False  # also log scalars and a validation crop to <run folder>/tensorboard/ (pip install tensorboard)
# --------------------------------------------------------------------------------------------

import sys

from core.entry import cli_entry


def main(argv: list[str] | None = None) -> None:
    from pipelines.multiblock.rerun import start
    from pipelines.multiblock.resolve import resolve_run

    run = resolve_run(globals(), argv, "phase3.py")  # every value and input checked; nothing written yet
    from pipelines.multiblock.regenerate import regenerate
    from pipelines.multiblock.train import train_block

    if start(run):  # settings printed, --from / --redo done; False: N3 already done, or a dry run
        train_block(run)
    if run.plan.action != "dry-run":
        regenerate(run)  # LR_3/ from N3.pt, also when N3 was done before (kept when current)


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
