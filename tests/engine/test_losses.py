import pytest
import torch
import torch.nn.functional as F

from core.errors import UserError
from core.rules import check_settings
from engine import losses
from engine.losses import (
    LOSS_RULE,
    comparable_loss,
    gradient_difference,
    make_loss,
    parse_loss,
    ssim_loss,
    term,
)
from inference.metrics import ssim


def smooth_pair(seed: int, size: int = 32, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """An image in [0, 1] (blurred noise, 3 channels) and a noisier copy of it."""
    generator = torch.Generator().manual_seed(seed)
    image = F.avg_pool2d(torch.rand(2, 3, size + 4, size + 4, generator=generator), 5, stride=1)
    noisy = (image + 0.04 * torch.randn(image.shape, generator=generator)).clamp(0, 1)
    return noisy.to(dtype), image.to(dtype)


def test_gradient_difference_ignores_constant_offsets_and_sees_edges():
    target = torch.rand(1, 3, 8, 8)
    assert gradient_difference(target + 0.3, target).item() == pytest.approx(0.0, abs=1e-7)
    ramp = torch.arange(8.0).repeat(8, 1)[None, None]
    # horizontal differences of the ramp are 1 (vs 0 for a flat target); vertical ones are 0
    assert gradient_difference(ramp, torch.zeros_like(ramp)).item() == pytest.approx(0.5)


def test_a_loss_is_a_sum_of_weighted_terms_named_without_case():
    assert parse_loss("l1") == ((1.0, "l1"),)
    assert parse_loss(" L1+0.1 * grad + 2*SSIM") == ((1.0, "l1"), (0.1, "grad"), (2.0, "ssim"))
    assert parse_loss("1e+1*mse + 1e-3*grad") == ((10.0, "mse"), (0.001, "grad"))  # a '+' in an exponent
    pred, target = torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)
    assert make_loss("l1") is F.l1_loss  # one unweighted term is the function itself
    assert make_loss("l1 + 2*mse")(pred, target).item() == 3.0
    ramp = torch.arange(16.0).view(1, 1, 4, 4)
    assert make_loss("0.5*l1 + 4*grad")(ramp, torch.zeros_like(ramp)).item() == pytest.approx(0.5 * 7.5 + 4 * 2.5)


@pytest.mark.parametrize(("text", "problem"), [
    ("huber", "unknown term 'huber'"),
    ("l1 + 0.1*ssmi", "unknown term 'ssmi'"),
    ("l1 +", "an empty term"),
    ("-0.1*grad", "the weight of 'grad' must be a number > 0, got '-0.1'"),
    ("l1 + 0*grad", "the weight of 'grad' must be a number > 0, got '0'"),
    ("l1 + x*grad", "the weight of 'grad' must be a number > 0, got 'x'"),
    ("l1 + nan*grad", "the weight of 'grad' must be a number > 0, got 'nan'"),
    ("l1 + inf*grad", "the weight of 'grad' must be a number > 0, got 'inf'"),
    ("l1 + 2*l1", "'l1' is named twice"),
])
def test_an_unknown_term_or_a_bad_weight_is_one_line_naming_the_setting_the_value_and_the_terms(text, problem):
    with pytest.raises(UserError) as refused:
        check_settings({"LOSS": text}, {"LOSS": LOSS_RULE}, {"LOSS": "l1"})
    assert str(refused.value) == (f"LOSS={text!r}: {problem}; expected terms [weight*]name joined by '+', e.g. "
                                  f"'l1 + 0.1*grad'; terms: l1, mse, grad, ssim (--set LOSS=...)")
    with pytest.raises(UserError) as refused:
        make_loss(text)
    assert str(refused.value).startswith(f"LOSS={text!r}: {problem}; expected ")


def test_a_new_term_is_one_registered_function(monkeypatch):
    monkeypatch.setattr(losses, "TERMS", dict(losses.TERMS))  # the registration ends with the test

    @term("Charbonnier")  # names are without case
    def charbonnier(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ((pred - target).square() + 1e-6).sqrt().mean()

    check_settings({"LOSS": "l1 + 0.5*charbonnier"}, {"LOSS": LOSS_RULE}, {"LOSS": "l1"})  # the settings know it
    pred, target = torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)
    assert make_loss("l1 + 0.5*charbonnier")(pred, target).item() == pytest.approx(1 + 0.5 * (1 + 1e-6) ** 0.5)
    with pytest.raises(UserError, match="terms: l1, mse, grad, ssim, charbonnier"):
        make_loss("tv")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_ssim_term_is_one_minus_the_metrics_ssim(dtype):
    pred, target = smooth_pair(0, dtype=dtype)
    measured = ssim(pred, target, space="rgb", shave=0)
    assert 0.3 < measured < 0.95  # a pair that is neither equal nor unrelated
    assert ssim_loss(pred, target).item() == pytest.approx(1 - measured, abs=1e-5 if dtype == torch.float32 else 1e-12)
    assert ssim_loss(target, target).item() == pytest.approx(0.0, abs=1e-6)


def test_gradients_flow_through_every_term():
    pred, target = smooth_pair(1)
    pred.requires_grad_(True)
    make_loss("l1 + mse + 0.1*grad + 0.5*ssim")(pred, target).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    pred.grad = None
    ssim_loss(pred, target).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_the_ssim_term_refuses_patches_smaller_than_its_window():
    with pytest.raises(UserError, match=r"^the ssim loss term needs patches of at least 11x11 pixels, got \(10, 12\)"):
        ssim_loss(torch.rand(1, 3, 10, 12), torch.rand(1, 3, 10, 12))


def test_l1_plus_ssim_trains_a_tiny_net_on_synthetic_pairs():
    torch.manual_seed(0)
    noisy, clean = smooth_pair(2, size=24)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3, padding=1))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    loss_fn = make_loss("l1 + 0.5*ssim")
    before = ssim(noisy + net(noisy).detach(), clean, space="rgb")
    values = []
    for _ in range(40):
        loss = loss_fn(noisy + net(noisy), clean)  # a residual denoiser
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        values.append(loss.item())
    after = ssim(noisy + net(noisy).detach(), clean, space="rgb")
    assert sum(values[-5:]) < 0.8 * sum(values[:5])
    assert after > before + 0.02


def test_a_record_with_the_old_grad_loss_weight_compares_as_its_loss_term():
    assert comparable_loss({"LOSS": "l1", "GRAD_LOSS_WEIGHT": 0.0}) == comparable_loss({"LOSS": "l1"})
    assert comparable_loss({"LOSS": "l1", "GRAD_LOSS_WEIGHT": 0.5, "N_FEATS": 8}) == {"LOSS": "l1 + 0.5*grad",
                                                                                     "N_FEATS": 8}
    assert comparable_loss({"LOSS": "L1+0.5 * Grad"}) == {"LOSS": "l1 + 0.5*grad"}
    assert comparable_loss({"LOSS": "huber"}) == {"LOSS": "huber"}  # refused elsewhere; compared as written
    assert comparable_loss({"N_FEATS": 8}) == {"N_FEATS": 8}
