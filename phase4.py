"""Phase 4: build N = N_3^+(N_2^+(N_1^+(x))) from N1.pt, N2.pt, N3.pt and train it end to end on (LR, HR).

Needs N1.pt, N2.pt, N3.pt (phase1_1.py ... phase3.py), unless INIT=fresh: then N is three new blocks trained
end to end only (the report's single-backpropagation baseline, Fig. 7). Writes N.pt, N_latest.pt, N_best.pt, log_N.csv,
curves_N.png, phases.png and the "phase4" entry of results.json.
"""
from __future__ import annotations

# ----------------------------------------------------------------------------------- settings
# Run-wide settings (DATASET, CAMERA, SCALE, the block architecture, VAL_FRACTION, PRESET, ...) are set in phase1_1.py
# and read from the run folder's run.json (INIT=fresh in a new folder: phase1_1.py's values, recorded here);
# all phase settings are accepted here (see --help).
# This phase:
INIT = "blocks"  # blocks = N from N1.pt..N3.pt (report) | fresh = new orthogonal blocks: the single-backprop baseline
PATCH_SIZE = 48  # training patch side (report: 48; the report's code used 120 here)
BATCH_SIZE = 16  # patches per iteration, split across torchrun ranks (report: 16; its code used 8)
ITERS_HIGH = 5000  # Adam iterations at LR_HIGH (report: 5000)
LR_HIGH = 1e-4  # (report: 1e-4)
ITERS_LOW = 5000  # Adam iterations at LR_LOW (report: 5000)
LR_LOW = 1e-5  # (report: 1e-5)
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

    run = resolve_run(globals(), argv, "phase4.py")  # every value and input checked; nothing written yet
    if start(run):  # settings printed, --from / --redo done; False: already done, or a dry run
        from pipelines.multiblock.combined import train_combined

        train_combined(run)


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
