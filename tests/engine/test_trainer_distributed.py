"""The trainer under a real 2-process gloo group: every collective's tensors on the backend's device, and
every decision taken once (ranks that see different local metrics or losses still act together)."""
from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn

from core.dist import DistInfo, mean_over_shards, rank_device
from core.errors import StopRequested, UserError
from core.runs import run_lock_of_all_ranks
from engine.schedules import Constant, Plateau
from engine.trainer import Stage, TrainConfig, Trainer
from tests import gloo

COLLECTIVES = ("all_reduce", "broadcast", "broadcast_object_list", "all_gather", "reduce", "barrier")


def record_collectives(log: list[str]) -> None:
    """Wrap torch.distributed's collectives so each call records the devices of the tensors it was given."""
    for name in COLLECTIVES:
        original = getattr(dist, name)

        @functools.wraps(original)
        def recorded(*args, _original=original, _name=name, **kwargs):
            tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
            if _name == "broadcast_object_list":
                tensors.append(torch.empty(0, device=kwargs.get("device") or "cpu"))
            log.extend(f"{_name}:{t.device.type}" for t in tensors)
            return _original(*args, **kwargs)

        setattr(dist, name, recorded)


def batches(step: int, info: DistInfo):
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(step))
    part = slice(2 * info.rank, 2 * info.rank + 2) if info.enabled else slice(0, 4)
    return x[part], (0.5 * x + 0.1)[part]


VAL_IMAGES = 5  # 3 on rank 0, 2 on rank 1


def sharded_evaluation(model: nn.Module, info: DistInfo, evaluations: list) -> dict[str, float]:
    """Every rank scores its share of the validation images; each evaluation records (the mean of the
    shards, the mean one process computes of them all, the images this rank scored)."""
    images = [torch.rand(1, 1, 6 + i, 7, generator=torch.Generator().manual_seed(100 + i)) for i in range(VAL_IMAGES)]
    scored = []

    def psnr(x: torch.Tensor) -> torch.Tensor:
        scored.append(x)
        return -10 * torch.log10(((model(x) - (0.5 * x + 0.1)) ** 2).mean())

    sharded, mine = mean_over_shards(psnr, images, info), len(scored)
    evaluations.append([sharded, mean_over_shards(psnr, images, DistInfo()), mine])
    return {"val_psnr": sharded}


def worker(rank: int, port: int, run_dir: str, scenario: str) -> None:
    torch.set_num_threads(1)
    gloo.join(rank, port)
    info = DistInfo(rank=rank, world_size=2, device=torch.device("cpu"))
    log: list[str] = []
    record_collectives(log)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 1, 3, padding=1))

    trainer_box = []

    def batch_fn(step, d):
        x, y = batches(step, d)
        if scenario == "stop" and rank == 1 and step == 7:  # seen at the check of iteration 9, after no evaluation
            trainer_box[0]._stop_signal = 15  # SIGTERM reached rank 1 only
        return (x * float("nan"), y) if scenario == "nan" and rank == 1 and step == 5 else (x, y)

    if scenario == "stop" and rank == 0:  # rank 0 writes its checkpoint slowly; rank 1 must wait for it
        import engine.trainer as trainer_module

        def slow_save(path, state, _save=trainer_module.save_checkpoint):
            time.sleep(1.0)
            _save(path, state)

        trainer_module.save_checkpoint = slow_save
    folder = Path(run_dir)  # the run folder this rank sees (rank{rank}.json goes to run_dir)
    if scenario == "unshared":  # each rank sees its own folder, as nodes without a shared file system
        folder = folder / f"node{rank}"
        folder.mkdir()
        if rank == 0:
            (folder / "latest.pt").write_bytes(b"a checkpoint only rank 0 sees")

    outcome: dict = {"rank": rank, "evaluations": []}

    def evaluate(model):  # each rank would see another number: only rank 0's may count
        if scenario == "sharded":
            return sharded_evaluation(model, info, outcome["evaluations"])
        return {"val_psnr": 10.0 if rank == 0 else 20.0 + model[0].weight.sum().item()}

    schedule = Plateau(0.01, 0.01, mu=0.0, patience=2) if scenario == "plateau" else Constant(0.01)
    stages = [Stage("a", 12, lambda m: torch.optim.Adam(m.parameters(), lr=0.01), schedule)]
    config = TrainConfig(run_dir=folder, eval_every=2, check_every=3, progress=False)
    try:
        trainer_box.append(Trainer(net, stages, batch_fn, nn.functional.l1_loss, evaluate, config,
                                   torch.device("cpu"), info))
        result = trainer_box[0].fit(resume=scenario == "unshared")
        outcome.update(step=result.step, stopped=result.stopped_early, best=result.best, last=result.last_eval,
                       weights=[p.detach().sum().item() for p in net.parameters()])
    except UserError as err:
        outcome["error"] = str(err)
    except StopRequested as stop:
        latest = folder / "latest.pt"
        outcome.update(error=str(stop), checkpoint_step_when_stopped=torch.load(
            latest, weights_only=True)["step"] if latest.exists() else None)
    if scenario == "unshared":
        try:
            with run_lock_of_all_ranks(folder, info):
                outcome["lock"] = "held"
        except UserError as err:
            outcome["lock"] = str(err)
    outcome["collective_devices"] = sorted(set(log))
    Path(run_dir, f"rank{rank}.json").write_text(json.dumps(outcome))
    dist.barrier()
    gloo.leave()


def run_two_ranks(tmp_path: Path, scenario: str) -> list[dict]:
    gloo.run_two_ranks(worker, str(tmp_path), scenario)
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
def test_ranks_with_different_local_metrics_take_one_plateau_decision(tmp_path: Path):
    first, second = run_two_ranks(tmp_path, "plateau")
    # rank 0 sees 10.0 every time: improvement once, then two stale evaluations stop the stage at step 6
    assert first["stopped"] == second["stopped"] == ["a@6"]
    assert first["step"] == second["step"] == 6 and first["best"] == second["best"] == 10.0
    assert first["weights"] == pytest.approx(second["weights"], abs=0)
    for outcome in (first, second):  # gloo's device is the CPU; a collective of NCCL would need the GPU
        assert outcome["collective_devices"] and all(d.endswith(":cpu") for d in outcome["collective_devices"])


@pytest.mark.slow
def test_a_non_finite_loss_on_one_rank_stops_both_at_the_same_iteration(tmp_path: Path):
    first, second = run_two_ranks(tmp_path, "nan")
    assert "error" in first and "error" in second
    assert "loss became nan at iteration 6 on rank 1" in second["error"]  # every rank names the iteration
    assert "loss became nan at iteration 6 on rank 1" in first["error"]
    assert "stopped" in first["error"] and "last good checkpoint" in first["error"]
    assert torch.load(tmp_path / "latest.pt", weights_only=True)["step"] == 4  # nothing saved after the NaN


@pytest.mark.slow
def test_every_rank_scores_its_share_of_the_validation_images_and_all_get_one_mean(tmp_path: Path):
    first, second = run_two_ranks(tmp_path, "sharded")
    assert [e[2] for e in first["evaluations"]] == [3] * 6  # 12 iterations, an evaluation every 2
    assert [e[2] for e in second["evaluations"]] == [2] * 6
    for outcome in (first, second):
        for sharded, whole, _ in outcome["evaluations"]:
            assert sharded == pytest.approx(whole, rel=1e-6)
    assert [e[0] for e in first["evaluations"]] == [e[0] for e in second["evaluations"]]
    assert first["last"] == second["last"] and first["best"] == second["best"]


def test_rank_device_follows_local_rank_and_a_single_visible_gpu():
    cuda = torch.device("cuda")
    assert rank_device(cuda, local_rank=3, visible=8) == torch.device("cuda", 3)
    assert rank_device(cuda, local_rank=3, visible=1) == torch.device("cuda", 0)  # one GPU per process
    assert rank_device(torch.device("cpu"), local_rank=3, visible=0) == torch.device("cpu")
    with pytest.raises(UserError, match="LOCAL_RANK=2 but this process sees only 2 GPUs"):
        rank_device(cuda, local_rank=2, visible=2)
    with pytest.raises(UserError, match="no CUDA GPU is visible"):
        rank_device(cuda, local_rank=0, visible=0)


@pytest.mark.slow
def test_a_stop_request_on_one_rank_ends_every_rank_after_the_checkpoint_is_written(tmp_path: Path):
    """torchrun kills the other ranks when one exits: no rank may leave while rank 0 still writes."""
    first, second = run_two_ranks(tmp_path, "stop")
    for outcome in (first, second):
        assert "stopped by signal at iteration 9" in outcome["error"]  # the next check (check_every=3)
        assert outcome["checkpoint_step_when_stopped"] == 9  # written whole before rank 1 left (8 before)


@pytest.mark.slow
def test_ranks_that_see_different_run_folders_are_refused_on_every_rank(tmp_path: Path):
    first, second = run_two_ranks(tmp_path, "unshared")
    for outcome in (first, second):
        assert "the ranks see different checkpoints" in outcome["error"]
        assert "rank 0: 29 bytes, rank 1: no file" in outcome["error"]
        assert outcome["lock"].startswith("rank(s) 1 do not see the run folder")
        assert "shared file system" in outcome["lock"]
