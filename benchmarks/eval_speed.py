"""What ``espcn.py eval`` costs next to the network alone: the shipped x3 weights on five benchmark folders.

    python benchmarks/eval_speed.py [--quick] [--threads N] [--sets Set5,Set14,...]

In one process, interleaved (network, scoring with a cold baseline cache, scoring with a warm one, ...):
- ``network``: ``FastESPCN`` forward passes on the Y channel of every LR image (what eval runs), nothing else,
  one image after another, each spread over PyTorch's threads (strips, ``inference.fast_espcn``);
- ``eager_network``: the same passes through the plain eager ``ESPCN`` module (what eval ran before);
- ``score_cold``: ``inference.scoring.score_scaled_images`` as ``espcn.py eval`` calls it (LR by MATLAB
  imresize, the network, MATLAB-exact chroma, colour conversion, PSNR/SSIM in Y and RGB for the model and
  bicubic), with an empty baseline cache: the first model scored on these sets; with several threads the
  images are scored one per thread (``core.threads``), SSIM by the C kernel where it builds
  (``inference.ssim_kernel``; ``ssim_backend`` in the result says which);
- ``score_warm``: the same with the bicubic rows cached: every later model.
Images are decoded once before timing (decoding is not scoring). Default sets: Set5, Set14, T91 and two
folders made from them here because Urban100/BSD100/Manga109 are not on this machine: ``Set14x2`` and
``Set5x2``, their images enlarged 2x by bicubic (about 1000x1000 pixels, the size of Urban100/Manga109).
"""
from __future__ import annotations

import os

import numpy as np
import torch
from common import finish, interleaved, parser, rounded, start  # puts the repo on sys.path
from PIL import Image

from data.color import rgb_to_y
from data.datasets import load_named_set
from inference import ssim_kernel
from inference.fast_espcn import FastESPCN
from inference.scoring import BaselineCache, prepare_hr, score_scaled_images
from pipelines.espcn.common import DEFAULT_WEIGHTS, load_espcn


def load_sets(names: list[str], quick: bool) -> dict[str, list[tuple[str, np.ndarray]]]:
    """The named folders under $SR_DATA; ``<set>x2`` is that set enlarged 2x by bicubic (Pillow)."""
    root = os.environ.get("SR_DATA")
    sets = {}
    for name in names:
        base = name[:-2] if name.endswith("x2") else name
        images = load_named_set(root, base)
        if name.endswith("x2"):
            images = [(n, np.asarray(Image.fromarray(im).resize((im.shape[1] * 2, im.shape[0] * 2), Image.BICUBIC)))
                      for n, im in images]
        sets[name] = images[:2] if quick else images
    return sets


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--sets", default="Set5,Set14,T91,Set14x2,Set5x2")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    # The four candidates run the same 129 images in turn: with oneDNN's default cache of 1024 convolution
    # primitives they evict each other's (the network measured 0.92 s instead of 0.61 s at 2 threads). One
    # espcn.py eval creates each image's primitives once either way; read before the first convolution.
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "8192")
    result = start(args)
    device = torch.device("cpu")
    net = load_espcn(DEFAULT_WEIGHTS, device)
    model = FastESPCN(net, device=device)
    sets = load_sets(args.sets.split(","), args.quick)
    lr_y = [rgb_to_y(prepare_hr(image, 3, device)[1]) for images in sets.values() for _, image in images]
    warm_cache = BaselineCache()

    def network() -> None:
        for y in lr_y:
            model(y)

    def eager_network() -> None:
        with torch.no_grad():
            for y in lr_y:
                net(y)

    def score(cache: BaselineCache) -> None:
        for images in sets.values():
            score_scaled_images(model, images, scale=3, channels=1, device=device, cache=cache)

    score(warm_cache)  # fills the warm cache
    candidates = {"network": network, "eager_network": eager_network,
                  "score_cold": lambda: score(BaselineCache()), "score_warm": lambda: score(warm_cache)}
    times = interleaved(candidates, repeats=1 if args.quick else args.repeats)
    pixels = sum(image.shape[0] * image.shape[1] for images in sets.values() for _, image in images)
    result.update({
        "sets": {name: {"images": len(images), "hr_megapixels": rounded(sum(i.shape[0] * i.shape[1]
                                                                            for _, i in images) / 1e6, 3)}
                 for name, images in sets.items()},
        "hr_megapixels": rounded(pixels / 1e6, 3),
        "threads": torch.get_num_threads(),
        "ssim_backend": ssim_kernel.backend(),
        "times": {name: {key: rounded(value) for key, value in entry.items()} for name, entry in times.items()},
        "score_over_network": {kind: rounded(times[kind]["median_s"] / times["network"]["median_s"], 3)
                               for kind in ("score_cold", "score_warm", "eager_network")},
        "score_over_eager_network": {kind: rounded(times[kind]["median_s"] / times["eager_network"]["median_s"], 3)
                                     for kind in ("score_cold", "score_warm")},
    })
    finish(result, args)


if __name__ == "__main__":
    main()
