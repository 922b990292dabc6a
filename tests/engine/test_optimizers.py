import torch

from engine.optimizers import adam


def test_adam_is_fused_on_a_gpu_only_and_keeps_its_groups():
    params = [torch.nn.Parameter(torch.zeros(3))]
    on_gpu = adam(params, torch.device("cuda"), lr=1e-3, betas=(0.9, 0.999))
    assert on_gpu.defaults["fused"] is True and on_gpu.defaults["lr"] == 1e-3
    assert not adam(params, torch.device("cpu"), lr=1e-3).defaults["fused"]
    groups = [{"params": params, "lr": 0.5, "lr_factor": 1.0}, {"params": [torch.nn.Parameter(torch.ones(2))],
                                                               "lr": 0.05, "lr_factor": 0.1}]
    assert [g["lr"] for g in adam(groups, torch.device("cuda"), lr=1e-3).param_groups] == [0.5, 0.05]
