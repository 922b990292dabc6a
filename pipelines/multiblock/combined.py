"""Phase 4: the combined network N = N_3^+(N_2^+(N_1^+(x))), trained end to end."""
from __future__ import annotations

import torch

from core.checkpoint import load_checkpoint
from core.dist import init_distributed
from core.errors import UserError
from core.settings import RunContext
from engine.schedules import Constant
from engine.trainer import Stage
from models.rcan import MultiBlockNet
from pipelines.multiblock import chain
from pipelines.multiblock.rerun import prepare
from pipelines.multiblock.run_folder import block_architecture, block_kwargs, load_block, run_record
from pipelines.multiblock.train import NetworkJob, initial_block, optimizer_factory, set_clamp, train_network


def train_combined(ctx: RunContext) -> None:
    """Phase 4: N = N_3^+(N_2^+(N_1^+(x))) from the three blocks, trained end to end on (LR, HR).

    ``INIT=fresh`` builds N from three new blocks (``initial_block``: orthogonal init, TAIL_GAIN) instead:
    the single-backpropagation baseline of the report's Fig. 7, which needs no N<i>.pt."""
    s, phase = ctx.settings, chain.LAST
    init = str(s["INIT"]).lower()  # blocks | fresh, checked with every setting (phase_settings.RULES)
    paths = [ctx.out / f"{name}.pt" for name in phase.needs]

    def check_inputs() -> None:
        missing = [name for name, path in zip(phase.needs, paths, strict=True) if not path.exists()]
        if missing and init == "blocks":
            first, last = chain.trainer(missing[0]).script, chain.trainer(phase.needs[-1]).script
            scripts = last if first == last else f"the phases from {first} to {last}"
            raise UserError(f"{phase.script} needs {', '.join(f'{name}.pt' for name in missing)} in {ctx.out}; run "
                            f"{scripts} first with the same --out, or set INIT=fresh")

    dist_info, device = init_distributed(ctx.device)
    if not prepare(ctx, phase.script, dist_info, check_inputs):
        return
    record = run_record(ctx, phase.script)
    if init == "fresh":  # new blocks, seeded seed, seed+1, ... (initial_block seeds torch itself)
        blocks = [initial_block({**s, "INIT": "fresh"}, ctx.out, chain.trainer(name), ctx.seed + i)
                  for i, name in enumerate(phase.needs)]
        for block in blocks:
            block.clamp = True
        net, block_meta = MultiBlockNet(blocks), block_kwargs(s)
    else:
        net = MultiBlockNet([load_block(path, clamp=True, record=record) for path in paths])
        block_meta = block_architecture(load_checkpoint(paths[0])["meta"], paths[0])
    torch.manual_seed(ctx.seed)
    stages = [
        Stage("high", s["ITERS_HIGH"], optimizer_factory("adam", s["LR_HIGH"]), Constant(s["LR_HIGH"]),
              set_clamp(True)),
        Stage("low", s["ITERS_LOW"], optimizer_factory("adam", s["LR_LOW"]), Constant(s["LR_LOW"]),
              set_clamp(True)),
    ]
    meta = {"arch": "multiblock-net", "blocks": len(phase.needs), **block_meta, "run": record}
    job = NetworkJob(net, phase.network, [st for st in stages if st.steps > 0], phase.reads, phase.result,
                     phase.script, meta)
    train_network(ctx, job, dist_info, device)
