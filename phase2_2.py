"""Phase 2-2: run N_2^+ (N2.pt) over the LR_1 train and test images and write LR_2/ (16-bit PNG).

Needs N2.pt and LR_1/ (phase2_1.py). A rerun with the same N2.pt is skipped; a changed N2.pt regenerates LR_2/;
a run killed halfway continues where it stopped. Next: phase3.py.
"""
from __future__ import annotations

# ----------------------------------------------------------------------------------- settings
# Run-wide settings (DATASET, CAMERA, SCALE, the block architecture, VAL_FRACTION, PRESET, ...) are set in phase1_1.py
# and read from the run folder's run.json; all phase settings are accepted here (see --help).
# This phase has no settings of its own.
# --------------------------------------------------------------------------------------------
import sys

from core.entry import cli_entry


def main(argv: list[str] | None = None) -> None:
    from pipelines.multiblock.rerun import start
    from pipelines.multiblock.resolve import resolve_run

    run = resolve_run(globals(), argv, "phase2_2.py")  # every value and input checked; nothing written yet
    if start(run):  # settings printed, --from / --redo done; False: a dry run
        from pipelines.multiblock.regenerate import regenerate

        regenerate(run)


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
