import pytest
import torch

from models import ESPCN, espcn_param_groups, receptive_field_radius


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(scale: int, channels: int) -> None:
    model = ESPCN(scale=scale, channels=channels, features=(8, 4))
    x = torch.rand(2, channels, 7, 5)
    assert model.forward_preshuffled(x).shape == (2, channels * scale * scale, 7, 5)
    assert model(x).shape == (2, channels, 7 * scale, 5 * scale)
    assert (model.scale, model.channels) == (scale, channels)


def reference_pixel_shuffle(t: torch.Tensor, r: int) -> torch.Tensor:
    """out[c, y*r+i, x*r+j] = in[c*r*r + i*r + j, y, x], written out with loops."""
    n, crr, h, w = t.shape
    c = crr // (r * r)
    out = torch.zeros(n, c, h * r, w * r)
    for b in range(n):
        for ch in range(c):
            for y in range(h):
                for x in range(w):
                    for i in range(r):
                        for j in range(r):
                            out[b, ch, y * r + i, x * r + j] = t[b, ch * r * r + i * r + j, y, x]
    return out


@pytest.mark.parametrize(("scale", "channels"), [(2, 3), (3, 1)])
def test_forward_is_pixel_shuffle_of_preshuffled(scale: int, channels: int) -> None:
    torch.manual_seed(0)
    model = ESPCN(scale=scale, channels=channels, features=(8, 4))
    x = torch.rand(1, channels, 4, 3)
    with torch.no_grad():
        expected = reference_pixel_shuffle(model.forward_preshuffled(x), scale)
        torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


def test_param_groups_last_layer_ten_times_slower() -> None:
    model = ESPCN(scale=3, features=(8, 4))
    groups = espcn_param_groups(model, lr=0.01)
    assert [g["lr_factor"] for g in groups] == [1.0, 0.1]
    assert groups[0]["lr"] == pytest.approx(0.01)
    assert groups[1]["lr"] == pytest.approx(0.001)
    assert {id(p) for p in groups[1]["params"]} == {id(model.conv3.weight), id(model.conv3.bias)}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters())) == 6
    torch.optim.SGD(groups, lr=0.01)  # the extra keys are accepted by optimizers


def test_receptive_field_radius() -> None:
    assert receptive_field_radius(ESPCN()) == 4
