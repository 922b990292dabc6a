"""ESPCN (Shi et al. 2016): train on T91, score on Set5/Set14, upscale your own images.

    python espcn.py train --data DIR --out runs/espcn_x3 [--set NAME=VALUE ...] [--config JSON] [--resume]
    python espcn.py eval --weights W [--set EVAL_SETS=Set5,Set14] [--data DIR] [--out DIR] [--save-images]
    python espcn.py upscale --weights W INPUT... --out DIR     (images, folders, videos)
    python espcn.py export --weights W --format safetensors|onnx|state_dict [--out FILE]
    python espcn.py SUBCOMMAND --help                          (the settings and flags it uses)
    python -m pipelines.espcn.publish RUN NAME                 (a finished run as weights/NAME.pt + .json)

Model selection (best.pt, the plateau rule, early stopping) looks only at whole training images held out
from TRAIN_SET (VAL_FRACTION); the EVAL_SETS are scored once, at the end, with bicubic beside the model.
"""
from __future__ import annotations

# ----------------------------------------------------------------------------------- settings
PRESET = "none"  # none = this block as written (our best measured recipe) | best (the same, named) | paper
SCALE = 3  # upscaling factor r (paper Table 1: 3; 2 and 4 also supported)
CHANNELS = 1  # 1 = luminance Y only (paper), 3 = RGB (the published reproduction's choice)
FEATURES = [64, 32]  # feature maps of the first two layers (paper: 64, 32)
TRAIN_SET = "T91"  # HR training folder under --data (paper: T91); skimage-train = bundled photos
EVAL_SETS = ["Set5", "Set14"]  # HR folders scored once at the end (paper); never used for selection
VAL_FRACTION = 0.1  # share of whole training images held out for validation (ours)
DEGRADATION = "bicubic"  # training LR: bicubic = MATLAB imresize, as scored (ours) | gaussian = blur+subsample (paper)
BLUR_SIGMA = 0.33  # DEGRADATION=gaussian: std in LR pixels (x SCALE in HR); not in the paper; ours: closest to bicubic
SUBIMAGE = 17  # LR sub-image side; HR sub-images are 17r x 17r (paper)
STRIDE = 14  # LR stride between sub-images, (17 - sum(k mod 2)) (paper)
SUBIMAGE_OFFSETS = "grid"  # grid = the paper's fixed STRIDE grid | random = fresh random offsets every batch (ours)
AUGMENT = True  # also train on the 8 rotations/flips of each image (ours; not in the paper)
INIT_WEIGHTS = ""  # start from these ESPCN weights (same SCALE/CHANNELS/FEATURES) instead of random: fine-tuning (ours)
HR_SCALES = [1.0]  # train on each image at these scales, e.g. 1.0,0.9,0.8,0.7,0.6 (FSRCNN's augmentation; ours)
EPOCHS = 800  # training length (ours, x3 Set5: 32.78 dB after 800, 32.86 after 2400, tuned 32.92); plateau: max
BATCH_SIZE = 16  # sub-images per step, split across torchrun ranks (not given by the paper; ours)
OPTIMIZER = "adam"  # adam | sgd (not given by the paper; ours)
MOMENTUM = 0.9  # SGD momentum (ours)
SCHEDULE = "cosine"  # cosine = decay from LR_START to LR_END over EPOCHS (ours) | plateau = the paper's rule
LR_START = 0.003  # initial learning rate (ours, for cosine; paper: 0.01 with its plateau rule)
LR_END = 1e-5  # final learning rate (ours, for cosine; paper: 0.0001)
MU = 0.01  # plateau: lower the rate when the validation PSNR improves by less than MU dB in an epoch (value ours)
LR_FACTOR = 10.0  # plateau: divide the rate by this when it is lowered (ours)
COOLDOWN = 20  # plateau: epochs after a decrease before the next one may happen (ours)
PATIENCE = 100  # plateau: stop after this many epochs without validation improvement (paper)
LAST_LAYER_LR = 0.1  # learning-rate multiplier of the last layer (paper: "10 times smaller")
LOSS = "mse"  # terms [weight*]name joined by +, e.g. "mse + 0.1*ssim": mse (paper), l1, grad, ssim
EMA = 0.0  # > 0: validate, select and save an average of the weights, decay per step, e.g. 0.9999 (ours)
PRECISION = "auto"  # auto (bf16 where measured faster) | fp32 (TF32 convs on GPUs) | fp32_strict | bf16 | fp16 (CUDA)
CHANNELS_LAST = "auto"  # channels_last memory format for training: auto (on where measured faster) | true | false
COMPILE = False  # torch.compile the training network (CUDA; the first iterations pay for compiling)
DETERMINISTIC = False  # deterministic kernels, TF32 and cudnn.benchmark off: bit-exact reruns (slower)
TENSORBOARD = False  # also log scalars and a validation crop to <run folder>/tensorboard/ (pip install tensorboard)
EVAL_TILE = 512  # tile side (LR pixels) for whole-image inference
EVAL_8BIT = False  # eval: also score the 8-bit protocol (LR and outputs rounded to 8 bits, as BasicSR/EDSR)
SAVE_IMAGES = False  # eval: write the SR images into OUT/images/<set>/ (same as --save-images)
FIGURE = True  # eval: compare_<set>.png, HR / bicubic / model crops where the model differs most from bicubic
FIGURE_CROP = ""  # eval figure: "" automatic | NAME (that image) | NAME:X,Y,SIZE (that window, HR pixels)
BASELINE_CACHE = "runs/.cache"  # eval: bicubic rows kept per (set content, scale, protocol); "" = recompute
SELF_ENSEMBLE = False  # eval, upscale: x8 self-ensemble, 8 flips/rotations averaged (8x the time; eval: "model+" rows)
INFERENCE = "auto"  # upscale: auto | ort | strips | channels_last | eager (inference/fast_espcn.py)
UPSCALE_PRECISION = "auto"  # upscale: auto = fp32, bf16 strips for video on bf16 hardware | fp32 | bf16 | fp16 CUDA
VIDEO_CODEC = "auto"  # upscaled videos: auto = libx264 (mpeg4 without it, VP9 for .webm) or a PyAV encoder
PNG_LEVEL = 1  # upscale: zlib level of the PNGs written (1 = fastest, 9 = smallest files; ours)
VIDEO_CRF = 18  # H.264 constant rate factor of upscaled videos: lower = better and bigger (ours)
VIDEO_PRESET = "veryfast"  # libx264 speed preset: ultrafast ... medium (ffmpeg's default) ... veryslow (ours)
# --------------------------------------------------------------------------------------------

PRESETS = {
    "none": {},
    # What the paper states, our choices (marked "ours" above) for what it leaves out.
    "paper": {"AUGMENT": False, "DEGRADATION": "gaussian", "SCHEDULE": "plateau", "LOSS": "mse",
              "LR_START": 0.01, "LR_END": 0.0001, "EPOCHS": 3000, "PATIENCE": 100, "LAST_LAYER_LR": 0.1},
    # Our best (the block above; the shipped weights' commands name it): train on the test-time degradation
    # (MATLAB bicubic), augment, cosine decay.
    "best": {"DEGRADATION": "bicubic", "AUGMENT": True, "SCHEDULE": "cosine", "LR_START": 0.003,
             "LR_END": 1e-5, "EPOCHS": 800, "LOSS": "mse"},
}

import sys

from core.entry import cli_entry


def main(argv: list[str] | None = None) -> None:
    from pipelines.espcn.cli import run

    run(globals(), argv)


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
