"""Hold out whole training images for validation, the same way in every pipeline."""
from __future__ import annotations

import numpy as np

from core.errors import UserError


def hold_out(count: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(training indices, validation indices) of ``count`` items: ``round(fraction * count)`` of them
    (at least one, never all) drawn by ``seed``, each list sorted."""
    if fraction <= 0 or count < 2:
        raise UserError(f"VAL_FRACTION={fraction} with {count} training images leaves no validation images; "
                        "raise VAL_FRACTION or add training images")
    order = np.random.default_rng(seed).permutation(count)
    n_val = min(count - 1, max(1, round(fraction * count)))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())
