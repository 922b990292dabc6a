import pytest
import torch

from core.errors import UserError
from engine.losses import gradient_difference, make_loss


def test_gradient_difference_ignores_constant_offsets_and_sees_edges():
    target = torch.rand(1, 3, 8, 8)
    assert gradient_difference(target + 0.3, target).item() == pytest.approx(0.0, abs=1e-7)
    ramp = torch.arange(8.0).repeat(8, 1)[None, None]
    # horizontal differences of the ramp are 1 (vs 0 for a flat target); vertical ones are 0
    assert gradient_difference(ramp, torch.zeros_like(ramp)).item() == pytest.approx(0.5)


def test_make_loss_combines_terms():
    pred, target = torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)
    assert make_loss("l1")(pred, target).item() == 1.0
    assert make_loss("mse", grad_weight=2.0)(pred, target).item() == 1.0
    with pytest.raises(UserError, match="expected 'l1' or 'mse'"):
        make_loss("ssim")
