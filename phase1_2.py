"""Phase 1-2: run N_1^+ (N1.pt) over the LR train and test images and write LR_1/ (16-bit PNG).

Needs N1.pt (phase1_1.py). A rerun with the same N1.pt is skipped; a changed N1.pt regenerates LR_1/;
a run killed halfway continues where it stopped. Next: phase2_1.py.
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

    regenerate(parse_cli(globals(), argv, __doc__, default_out="runs/multiblock"), index=1)


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
