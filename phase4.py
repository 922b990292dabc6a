"""Phase 4: build N = N_3^+(N_2^+(N_1^+(x))) from N1.pt, N2.pt, N3.pt and train it end to end on (LR, HR).

Needs N1.pt, N2.pt, N3.pt (phase1_1.py ... phase3.py), unless INIT=fresh: then N is three new blocks trained
end to end only (the report's single-backpropagation baseline, Fig. 7). Writes N.pt, N_latest.pt, N_best.pt, log_N.csv,
curves_N.png, phases.png and the "phase4" entry of results.json.
"""
from __future__ import annotations

# ----------------------------------------------------------------------------------- settings
CAMERA = "Canon"  # RealSR camera folder (report: Canon)
SCALE = 2  # RealSR scale folder (report: x2)
INIT = "blocks"  # blocks = N from N1.pt..N3.pt (report) | fresh = new orthogonal blocks: the single-backprop baseline
N_FEATS = 64  # INIT=fresh only (blocks: read from N1.pt): feature channels C (report: 64)
N_RESBLOCKS = 16  # INIT=fresh only: residual channel-attention blocks R per block (report: 16)
REDUCTION = 4  # INIT=fresh only: channel-attention squeeze C -> C/REDUCTION (report: 64 -> 16)
END_CONV = True  # INIT=fresh only: conv3x3 after the RCABs, as in the report's code
TAIL_GAIN = 0.1  # INIT=fresh only: orthogonal-init gain of the tail conv (report: 1; ours, as phase1_1.py)
PATCH_SIZE = 48  # training patch side (report: 48; the report's code used 120 here)
BATCH_SIZE = 16  # patches per iteration, split across torchrun ranks (report: 16; its code used 8)
ITERS_HIGH = 5000  # Adam iterations at LR_HIGH (report: 5000)
LR_HIGH = 1e-4  # (report: 1e-4)
ITERS_LOW = 5000  # Adam iterations at LR_LOW (report: 5000)
LR_LOW = 1e-5  # (report: 1e-5)
LOSS = "l1"  # l1 (report) | mse
GRAD_LOSS_WEIGHT = 0.0  # weight of the first-order gradient-difference term added to the loss (report sec. 6)
EVAL_EVERY = 500  # iterations between evaluations and checkpoints (ours)
VAL_FRACTION = 0.1  # whole training pairs held out to select N.pt (ours)
VALIDATE_ON_TEST = False  # select on the test pairs as the report did (optimistic; off by default)
SELECT = "best-val"  # best-val = weights of the best validation evaluation | last
TEST_CURVE = True  # also score the test pairs at each evaluation, for the Fig. 8 curves (never for selection)
PRECISION = "auto"  # auto (bf16 where measured faster: docs/benchmarks.md) | fp32 | bf16 | fp16 (CUDA only)
CHANNELS_LAST = "auto"  # channels_last memory format for training: auto (on where measured faster) | true | false
COMPILE = False  # torch.compile the training network (CUDA; the first iterations pay for compiling)
DETERMINISTIC = False  # deterministic kernels, TF32 and cudnn.benchmark off: bit-exact reruns (slower)
TENSORBOARD = False  # also log scalars and a validation crop to <run folder>/tensorboard/ (pip install tensorboard)
# --------------------------------------------------------------------------------------------

import sys

from core.errors import cli_entry


def main(argv: list[str] | None = None) -> None:
    from core.settings import parse_cli
    from pipelines.multiblock.combined import train_combined

    train_combined(parse_cli(globals(), argv, __doc__, default_out="runs/multiblock"))


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
