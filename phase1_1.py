"""Phase 1-1: train block N_1 on same-size (LR, HR) pairs (RealSR, City100, ...), in the report's three stages.

Writes N1.pt (N_1^+, the clamped block), N1_latest.pt (resume state), N1_best.pt, log_N1.csv,
curves_N1.png, and the "phase1" entry of results.json into the run folder (--out). Next: phase1_2.py.
"""
from __future__ import annotations

# ----------------------------------------------------------------------------------- settings
# Run-wide: recorded in the run folder (run.json, and in every N<i>.pt and LR_<i>/manifest.json); the later
# phases read them from there, and stop when given a different value. --seed is run-wide too.
PRESET = "report"  # report (these blocks as written) | small (CPU, minutes) | tiny (seconds); values: --help
DATASET = "realsr"  # realsr (RealSR as published) | city100 (City100_<CAMERA>/001H.PNG + 001L.PNG) | paired
CAMERA = "Canon"  # RealSR camera folder (report: Canon); City100's version: iPhoneX | NikonD5500
SCALE = 2  # RealSR scale folder; pairs are same-size (report: x2); city100 and paired do not use it
DATASET_DIR = ""  # folder holding the layout, under --data or absolute; empty = RealSR(V3), City100, --data itself
N_FEATS = 64  # feature channels C (report: 64)
N_RESBLOCKS = 16  # residual blocks R per block (report: 16 RCABs)
RESBLOCK = "rcab"  # the residual block: rcab (the report's RCAB), or another of models/blocks/ (one file each)
# A residual block's own settings (rcab's REDUCTION, ...) are declared in its file; --help lists them.
END_CONV = True  # conv3x3 after the RCABs, as in the report's code
TAIL_GAIN = 0.1  # orthogonal-init gain of the tail conv (report: 1); small = start near identity (ours)
VAL_FRACTION = 0.1  # whole training pairs held out to select each N<i>.pt (ours)
VALIDATE_ON_TEST = False  # select on the test pairs as the report did (optimistic; off by default)
# This phase:
PATCH_SIZE = 48  # training patch side (report: 48)
BATCH_SIZE = 16  # patches per iteration, split across torchrun ranks (report: 16)
ITERS_WARMUP = 2000  # stage A: unclamped warm-up iterations (report: 2000)
WARMUP_OPTIMIZER = "adadelta"  # adadelta (report) | adam (the report's code)
LR_WARMUP = 1.0  # warm-up learning rate (report: Adadelta lr=1; use 1e-4 with adam)
ITERS_CLAMP_HIGH = 3000  # stage B: clamped N_1^+, Adam (report: 3000)
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

    run = resolve_run(globals(), argv, "phase1_1.py")  # every value and input checked; nothing written yet
    if start(run):  # settings printed, --from / --redo done; False: already done, or a dry run
        from pipelines.multiblock.train import train_block

        train_block(run)


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
