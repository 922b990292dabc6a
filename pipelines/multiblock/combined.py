"""Phase 4: the combined network N = N_3^+(N_2^+(N_1^+(x))), trained end to end."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from core.checkpoint import load_checkpoint
from engine.trainer import constant_stage
from models.blocks import block_kwargs
from models.rcan import MultiBlockNet
from pipelines.multiblock import chain
from pipelines.multiblock.run_folder import block_architecture, load_block
from pipelines.multiblock.train import NetworkJob, initial_block, set_clamp, train_network

if TYPE_CHECKING:
    from pipelines.multiblock.resolve import Run


def train_combined(run: Run) -> None:
    """Phase 4: N = N_3^+(N_2^+(N_1^+(x))) from the three blocks, trained end to end on (LR, HR).

    ``INIT=fresh`` builds N from three new blocks (``initial_block``: orthogonal init, TAIL_GAIN) instead:
    the single-backpropagation baseline of the report's Fig. 7, which needs no N<i>.pt."""
    s, phase, record = run.settings, run.phase, run.record
    paths = [run.out / f"{name}.pt" for name in phase.needs]
    if str(s["INIT"]).lower() == "fresh":  # new blocks, seeded seed, seed+1, ... (initial_block seeds torch)
        blocks = [initial_block({**s, "INIT": "fresh"}, run.out, chain.trainer(name), run.seed + i)
                  for i, name in enumerate(phase.needs)]
        for block in blocks:
            block.clamp = True
        net, block_meta = MultiBlockNet(blocks), block_kwargs(s)
    else:
        net = MultiBlockNet([load_block(path, clamp=True, record=record) for path in paths])
        block_meta = block_architecture(load_checkpoint(paths[0])["meta"], paths[0])
    torch.manual_seed(run.seed)
    stages = [constant_stage("high", s["ITERS_HIGH"], "adam", s["LR_HIGH"], set_clamp(True)),
              constant_stage("low", s["ITERS_LOW"], "adam", s["LR_LOW"], set_clamp(True))]
    meta = {"arch": "multiblock-net", "blocks": len(phase.needs), **block_meta, "run": record}
    job = NetworkJob(net, [st for st in stages if st.steps > 0], meta)
    train_network(run, job)
