import pytest
import torch
from torch import nn

from models import (
    RESBLOCKS,
    Block,
    ChannelAttention,
    MultiBlockNet,
    ResBlock,
    ToyBlock,
    normal_init_,
    orthogonal_init_,
    receptive_field_radius,
)

TINY = {"n_feats": 8, "n_resblocks": 2, "reduction": 4}


def tiny_block(seed: int, **kwargs) -> Block:
    torch.manual_seed(seed)
    return Block(**TINY, **kwargs)


def test_block_shape_and_report_layout() -> None:
    block = Block()
    assert block(torch.rand(1, 3, 12, 10)).shape == (1, 3, 12, 10)
    assert len(block.body) == 16
    attention = block.body[0].attention
    assert (attention.down.in_channels, attention.down.out_channels) == (64, 16)
    assert receptive_field_radius(block) == 35  # the report's 71x71 receptive field


def test_zero_tail_makes_the_block_the_identity() -> None:
    block = tiny_block(0)
    nn.init.zeros_(block.tail.weight)
    nn.init.zeros_(block.tail.bias)
    x = torch.rand(2, 3, 9, 9)
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)


def test_clamp_is_off_by_default_and_toggles() -> None:
    block = tiny_block(1)
    nn.init.constant_(block.tail.bias, 0.7)  # push outputs past 1
    x = torch.rand(1, 3, 8, 8)
    assert block.clamp is False
    assert block(x).max().item() > 1.0
    block.clamp = True
    out = block(x)
    assert out.min().item() >= 0.0
    assert out.max().item() == 1.0


def test_orthogonal_init() -> None:
    block = orthogonal_init_(tiny_block(2))
    for m in block.modules():
        if isinstance(m, nn.Conv2d):
            w = m.weight.reshape(m.out_channels, -1)
            gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
            torch.testing.assert_close(gram, torch.eye(gram.shape[0]), atol=1e-5, rtol=0)
            assert torch.count_nonzero(m.bias) == 0
    head = block.head.weight.reshape(8, -1)  # 8 rows of 27 values: orthonormal rows
    torch.testing.assert_close(head @ head.T, torch.eye(8), atol=1e-5, rtol=0)


def test_normal_init_std() -> None:
    torch.manual_seed(3)
    conv = normal_init_(nn.Conv2d(64, 64, 3), std=0.1)
    assert conv.weight.std().item() == pytest.approx(0.1, rel=0.02)
    assert conv.weight.mean().item() == pytest.approx(0.0, abs=0.005)


def test_inherit_gives_equal_outputs() -> None:
    n1, n2 = tiny_block(4), tiny_block(5)
    x = torch.rand(1, 3, 10, 10)
    assert not torch.equal(n1(x), n2(x))
    n2.load_state_dict(n1.state_dict())
    torch.testing.assert_close(n2(x), n1(x), rtol=0, atol=0)


def test_combined_net_equals_chained_blocks() -> None:
    blocks = [tiny_block(s) for s in (6, 7, 8)]
    net = MultiBlockNet([tiny_block(s) for s in (6, 7, 8)])
    x = torch.rand(2, 3, 11, 9)
    with torch.no_grad():
        chained = blocks[2](blocks[1](blocks[0](x)))
        torch.testing.assert_close(net(x), chained, rtol=0, atol=0)
    assert receptive_field_radius(net) == 3 * (1 + 2 * 2 + 1 + 1)


def test_to_block_state_dicts_round_trip() -> None:
    net = MultiBlockNet([tiny_block(s) for s in (10, 11)])
    states = net.to_block_state_dicts()
    back = [Block(**TINY) for _ in states]
    for block, state in zip(back, states, strict=True):
        block.load_state_dict(state)
    for a, b in zip(net.state_dict().values(), MultiBlockNet(back).state_dict().values(), strict=True):
        assert torch.equal(a, b)
    states[0]["head.bias"].add_(1.0)  # copies, not views into the net
    assert not torch.equal(states[0]["head.bias"], net.blocks[0].head.bias)


def test_channel_attention_of_constant_channels() -> None:
    torch.manual_seed(12)
    ca = ChannelAttention(8, reduction=4)
    values = torch.linspace(-1, 1, 8)
    x = values.view(1, 8, 1, 1).expand(1, 8, 5, 6)
    with torch.no_grad():
        hidden = torch.relu(ca.down.weight.view(2, 8) @ values + ca.down.bias)
        gate = torch.sigmoid(ca.up.weight.view(8, 2) @ hidden + ca.up.bias)
        expected = (values * gate).view(1, 8, 1, 1).expand(1, 8, 5, 6)
        torch.testing.assert_close(ca(x), expected)


def test_toy_block() -> None:
    toy = ToyBlock()
    convs = [m for m in toy.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6
    assert (convs[0].in_channels, convs[-1].out_channels) == (3, 3)
    assert receptive_field_radius(toy) == 6
    x = torch.rand(1, 3, 7, 7)
    nn.init.zeros_(convs[-1].weight)
    nn.init.zeros_(convs[-1].bias)
    torch.testing.assert_close(toy(x), x, rtol=0, atol=0)


def test_receptive_field_radius_rejects_strided_models() -> None:
    with pytest.raises(ValueError, match="stride"):
        receptive_field_radius(nn.Conv2d(3, 3, 3, stride=2))
    with pytest.raises(ValueError, match="no convolution"):
        receptive_field_radius(nn.ReLU())


def test_rb_blocks_are_rcabs_without_attention() -> None:
    rb, rcab = Block(**TINY, resblock="rb"), Block(**TINY)
    assert all(isinstance(unit, ResBlock) for unit in rb.body) and len(rb.body) == 2
    assert set(rcab.state_dict()) - set(rb.state_dict()) == {f"body.{i}.attention.{layer}.{p}" for i in range(2)
                                                           for layer in ("down", "up") for p in ("weight", "bias")}
    assert receptive_field_radius(rb) == receptive_field_radius(rcab)
    assert set(RESBLOCKS) == {"rcab", "rb", "naf"}
    with pytest.raises(ValueError, match="expected one of naf, rb, rcab"):
        Block(**TINY, resblock="rcan")


@pytest.mark.parametrize(("dtype", "channels_last"), [(torch.float32, False), (torch.float32, True),
                                                      (torch.bfloat16, True), (torch.bfloat16, False)])
def test_channel_mean_gives_the_adaptive_pools_values_and_gradients_bit_for_bit(dtype, channels_last) -> None:
    """The pool's faster backward changes no number: a block's output and every gradient equal those with
    nn.AdaptiveAvgPool2d(1), in fp32 and bf16 autocast, NCHW and channels-last."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.rand(2, 3, 11, 9, generator=torch.Generator().manual_seed(0)).contiguous(memory_format=layout)
    results = []
    for pool in ("channel_mean", "adaptive"):
        block = orthogonal_init_(tiny_block(3)).to(memory_format=layout)
        if pool == "adaptive":
            for m in block.modules():
                if isinstance(m, ChannelAttention):
                    m.pool = nn.AdaptiveAvgPool2d(1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            out = block(x)
        out.float().square().mean().backward()
        results.append((out.detach(), [p.grad for p in block.parameters()]))
    (out, grads), (expected, expected_grads) = results
    assert torch.equal(out, expected)
    assert all(torch.equal(g, e) for g, e in zip(grads, expected_grads, strict=True))
