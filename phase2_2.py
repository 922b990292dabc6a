"""Phase 2-2: run N_2^+ (N2.pt) over the LR_1 train and test images and write LR_2/ (16-bit PNG).

Needs N2.pt and LR_1/ (phase2_1.py). A rerun with the same N2.pt is skipped; a changed N2.pt regenerates LR_2/;
a run killed halfway continues where it stopped. Next: phase3.py.
"""
from __future__ import annotations

# ----------------------------------------------------------------------------------- settings
CAMERA = "Canon"  # RealSR camera folder (report: Canon)
SCALE = 2  # RealSR scale folder (report: x2)
# --------------------------------------------------------------------------------------------

import sys

from core.errors import cli_entry


def main(argv: list[str] | None = None) -> None:
    from core.settings import parse_cli
    from pipelines.multiblock.regenerate import regenerate

    regenerate(parse_cli(globals(), argv, __doc__, default_out="runs/multiblock"), index=2)


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
