"""What the x8 self-ensemble (``inference.self_ensemble``) costs in time, beside what it adds, for the shipped weights.

    python benchmarks/self_ensemble.py espcn --data DIR [--weights weights/espcn_x3_y.pt] [--sets Set5,Set14]
    python benchmarks/self_ensemble.py city100 --data DIR [--pairs 001,016] [--weights W]

- ``espcn``: the network alone (``FastESPCN``, as ``espcn.py eval`` runs it) on the Y channel of every LR image
  of the sets (LR by MATLAB bicubic), one pass against the 8 of the ensemble, interleaved (``common``); the
  PSNR gain is what ``espcn.py eval --set SELF_ENSEMBLE=true`` writes, not repeated here.
- ``city100``: the shipped City100 network scored on City100's iPhone X test pairs (``DIR/City100``; the five of
  the authors' split, or ``--pairs``) as the phase scripts score them (``inference.scoring.score_pairs``, exact
  banded inference on a CPU), plain and with the ensemble, one image at a time: PSNR and seconds per pair. A
  pair takes about 15 s plain and 2 min with the ensemble on one thread of a 2-core EPYC, so the five pairs can be
  timed as five short runs (``--pairs 001``, ...).
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
from common import REPO, finish, interleaved, parser, rounded, start  # puts the repo on sys.path

from data.color import rgb_to_y
from data.datasets import load_named_set
from data.pair_layouts import PairSource, find_pairs
from data.paired import load_pairs
from inference.fast_espcn import FastESPCN
from inference.scoring import prepare_hr, score_pairs
from inference.self_ensemble import plus, self_ensemble
from pipelines.espcn.common import DEFAULT_WEIGHTS, load_espcn
from pipelines.multiblock.export import load_network

CITY100_WEIGHTS = REPO / "weights" / "multiblock_city100_iphonex.pt"


def espcn(args, result: dict) -> None:
    cpu = torch.device("cpu")
    net = load_espcn(args.weights or DEFAULT_WEIGHTS, cpu)
    model = FastESPCN(net, device=cpu)
    inputs = [rgb_to_y(prepare_hr(image, net.scale, cpu)[1])
              for name in args.sets.split(",") for _, image in load_named_set(args.data, name)]

    def plain() -> None:
        for x in inputs:
            model(x)

    def ensembled() -> None:
        for x in inputs:
            self_ensemble(model, x)

    times = interleaved({"model": plain, plus("model"): ensembled}, args.repeats)
    result.update(weights=str(args.weights or DEFAULT_WEIGHTS), sets=args.sets, images=len(inputs), seconds=times,
                  ratio=times[plus("model")]["median_s"] / times["model"]["median_s"])


def city100(args, result: dict) -> None:
    cpu = torch.device("cpu")
    net, _ = load_network(args.weights or CITY100_WEIGHTS)
    test = load_pairs(find_pairs(args.data, PairSource("city100", "iPhoneX"), "test"))
    wanted = set(args.pairs.split(",")) if args.pairs else None
    rows = {}
    for pair, (lr, hr) in zip(test.pairs, test.arrays, strict=True):
        if wanted is not None and pair.name not in wanted:
            continue
        row = {}
        for ensemble in (False, True):
            began = time.perf_counter()
            scores = score_pairs(net, [(pair.name, lr, hr)], device=cpu, ensemble=ensemble)
            method = plus("model") if ensemble else "model"
            row[method] = {**{k: scores[method][k] for k in ("psnr_rgb", "psnr_y", "ssim_y")},
                           "seconds": time.perf_counter() - began}
            row["identity"] = {k: scores["identity"][k] for k in ("psnr_rgb", "psnr_y", "ssim_y")}
        rows[pair.name] = row
        print(pair.name, rounded(row, 6), flush=True)
    if not rows:
        raise SystemExit(f"no City100 test pair named {args.pairs}")
    first = next(iter(rows.values()))
    means = {method: {key: statistics.mean(row[method][key] for row in rows.values()) for key in first[method]}
             for method in first}
    result.update(weights=str(args.weights or CITY100_WEIGHTS), pairs=rows, mean=means,
                  ratio=means[plus("model")]["seconds"] / means["model"]["seconds"])


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("what", choices=("espcn", "city100"))
    p.add_argument("--data", type=Path, required=True, help="the folder holding Set5/, Set14/ or City100/")
    p.add_argument("--weights", type=Path, default=None, help="default: the shipped weights")
    p.add_argument("--sets", default="Set5,Set14")
    p.add_argument("--pairs", default="", help="City100 test pairs by name, e.g. 001,016 (default: all five)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    result = start(args)
    (espcn if args.what == "espcn" else city100)(args, result)
    finish(rounded(result, 6), args)


if __name__ == "__main__":
    main()
