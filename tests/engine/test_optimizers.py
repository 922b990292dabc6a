import pytest
import torch

from engine.optimizers import adam, load_optimizer_state


def test_adam_is_fused_on_a_gpu_only_and_keeps_its_groups():
    params = [torch.nn.Parameter(torch.zeros(3))]
    on_gpu = adam(params, torch.device("cuda"), lr=1e-3, betas=(0.9, 0.999))
    assert on_gpu.defaults["fused"] is True and on_gpu.defaults["lr"] == 1e-3
    assert not adam(params, torch.device("cpu"), lr=1e-3).defaults["fused"]
    groups = [{"params": params, "lr": 0.5, "lr_factor": 1.0}, {"params": [torch.nn.Parameter(torch.ones(2))],
                                                               "lr": 0.05, "lr_factor": 0.1}]
    assert [g["lr"] for g in adam(groups, torch.device("cuda"), lr=1e-3).param_groups] == [0.5, 0.05]


def conv_params(channels_last: bool) -> list[torch.nn.Parameter]:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3)
    if channels_last:
        conv.to(memory_format=torch.channels_last)
    return list(conv.parameters())


def trained_state(make, params: list[torch.nn.Parameter], fused: bool | None) -> dict:
    """An optimizer's state after two steps over ``params``, its groups marked ``fused`` as a GPU run's are."""
    optimizer = make(params)
    for _ in range(2):
        optimizer.zero_grad()
        sum((p * p.detach().flip(0)).sum() for p in params).backward()
        optimizer.step()
    state = optimizer.state_dict()
    if fused is not None:
        for group in state["param_groups"]:
            group["fused"] = fused
    return state


@pytest.mark.parametrize("make", [
    lambda p: adam(p, torch.device("cpu"), lr=1e-3),
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    lambda p: torch.optim.Adadelta(p, lr=1.0),
], ids=["adam", "sgd-momentum", "adadelta"])
def test_a_gpu_state_of_contiguous_params_loads_into_channels_last_params_on_the_cpu(make):
    saved = trained_state(make, conv_params(channels_last=False), fused=True)
    params = conv_params(channels_last=True)
    assert params[0].stride() != params[0].contiguous().stride()
    optimizer = make(params)
    load_optimizer_state(optimizer, saved)
    fresh = make(conv_params(channels_last=True))
    for group, fresh_group in zip(optimizer.param_groups, fresh.param_groups, strict=True):
        for flag in ("fused", "foreach", "capturable", "differentiable"):
            assert group.get(flag) == fresh_group.get(flag), flag
    for index, param in enumerate(params):
        state = optimizer.state[param]
        assert state
        for key, value in state.items():
            assert torch.equal(value, saved["state"][index][key]), key  # values unchanged
            if key == "step":
                assert value.device.type == "cpu"  # not fused here: torch's place for it
            else:
                assert value.stride() == param.stride() and value.dtype == param.dtype, key
    optimizer.zero_grad()
    sum(p.sum() for p in params).backward()
    optimizer.step()  # and it steps


def test_a_cpu_state_loaded_into_a_fused_adam_runs_fused():
    saved = trained_state(lambda p: adam(p, torch.device("cpu"), lr=1e-3), conv_params(False), fused=None)
    assert saved["param_groups"][0]["fused"] is False
    params = conv_params(True)
    optimizer = torch.optim.Adam(params, lr=1e-3, fused=True)  # as adam() makes it on a GPU
    load_optimizer_state(optimizer, saved)
    assert all(group["fused"] is True for group in optimizer.param_groups)
    sum(p.sum() for p in params).backward()
    optimizer.step()
    assert all(state["step"].item() == 3 for state in optimizer.state.values())
