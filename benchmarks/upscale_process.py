"""``espcn.py upscale`` as a whole process against a plain 30-line eager script doing the same job.

    python benchmarks/upscale_process.py [--quick] [--images N] [--threads N] [--frames N]

Both upscale the same folder of 640x360 photos (made here from Set14/T91 or the photos scikit-image ships,
resized to 640x360) to 1920x1080 with the shipped x3 Y weights and write PNGs; each run is a fresh Python
process, timed from its start to its exit (imports included), the two alternating (A B A B ...). The plain
script (``PLAIN`` below) is what one writes from the pytorch/examples super_resolution recipe: Pillow's
YCbCr conversion and bicubic chroma, the eager network under ``torch.no_grad``, Pillow's PNG writer with
its defaults. Also reported: for ``espcn.py upscale``, the time from the process start and from the end of
``import torch`` to the first image written (read from its output as it happens), and the time ``import
torch`` alone takes (the part of the first image's delay no project code can remove). Beside it, where PyAV
is installed: a 640x360 H.264 clip (``--frames``, a photo panning) upscaled to 1080p by ``espcn.py upscale``
as a whole process (decode, network, libx264 encode), frames per second end to end. Each ``espcn.py`` run
uses the backend ``auto`` picks (its first output line, reported); the ONNX graph cache is filled by the
warm-up run, as by a user's first run.
"""
from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO, finish, parser, progress, rounded, start  # puts the repo on sys.path
from PIL import Image

PLAIN = '''
import sys
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision.transforms.functional import to_tensor


class ESPCN(nn.Module):
    def __init__(self, scale=3):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 5, padding=2)
        self.conv2 = nn.Conv2d(64, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x):
        return self.shuffle(self.conv3(torch.tanh(self.conv2(torch.tanh(self.conv1(x))))))


weights, folder, out = sys.argv[1:4]
net = ESPCN()
net.load_state_dict(torch.load(weights, map_location="cpu")["model"])
net.eval()
Path(out).mkdir(exist_ok=True)
for path in sorted(Path(folder).glob("*.png")):
    y, cb, cr = Image.open(path).convert("YCbCr").split()
    with torch.no_grad():
        out_y = net(to_tensor(y)[None]).clamp(0, 1)[0, 0]
    out_y = Image.fromarray((out_y * 255).round().byte().numpy(), mode="L")
    cb, cr = (c.resize(out_y.size, Image.BICUBIC) for c in (cb, cr))
    Image.merge("YCbCr", [out_y, cb, cr]).convert("RGB").save(Path(out) / path.name)
'''

# Run espcn.py in a process that notes when `import torch` ended, so the first image's delay can be read.
TIMED_ESPCN = '''
import sys, time
import torch
print("TORCH_IMPORTED", time.perf_counter(), flush=True)
sys.argv = ["espcn.py", *sys.argv[1:]]
sys.path.insert(0, ".")
import runpy
runpy.run_path("espcn.py", run_name="__main__")
'''


def make_frames(folder: Path, count: int) -> None:
    """``count`` 640x360 PNGs from the benchmark sets (or scikit-image's photos when they are absent)."""
    from core.errors import UserError
    from data.datasets import load_named_set

    root = os.environ.get("SR_DATA")
    photos = []
    for name in ("Set14", "T91") if root else ():
        try:
            photos += [image for _, image in load_named_set(root, name)]
        except UserError:  # a missing set just means fewer sources
            continue
    if not photos:
        photos = [image for _, image in load_named_set(None, "skimage-test")]
    for i in range(count):
        Image.fromarray(np.asarray(photos[i % len(photos)])).resize((640, 360), Image.BICUBIC).save(
            folder / f"frame{i:02d}.png")


def make_clip(path: Path, frames: int, source: Path) -> None:
    """A 640x360 H.264 clip of ``frames`` frames: the photo ``source`` panning."""
    import av

    still = np.asarray(Image.open(source).convert("RGB"))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = still.shape[1], still.shape[0], "yuv420p"
        for i in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.roll(still, 4 * i, axis=1), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def run_timed(command: list[str], env: dict[str, str]) -> tuple[float, float | None, float | None, str]:
    """(whole-process seconds, seconds from the process start and from the end of torch's import to the first
    image line, if any, and the backend line of ``espcn.py upscale``)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    torch_done = first = first_after_torch = None
    backend = ""
    for line in proc.stdout:
        now = time.perf_counter()
        if line.startswith("TORCH_IMPORTED"):
            torch_done = now
        elif line.startswith("ESPCN x"):
            backend = line.split(": ", 1)[-1].strip()
        elif " -> " in line and first is None and torch_done is not None:
            first, first_after_torch = now - started, now - torch_done
    _, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"{command} failed:\n{err}")
    return time.perf_counter() - started, first, first_after_torch, backend


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--images", type=int, default=6, help="images in the folder (default 6)")
    p.add_argument("--repeats", type=int, default=5, help="process pairs to time (default 5)")
    p.add_argument("--frames", type=int, default=48, help="frames of the 1080p video run (default 48; 0: none)")
    args = p.parse_args()
    result = start(args)
    repeats = 2 if args.quick else args.repeats
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    weights = REPO / "weights" / "espcn_x3_y.pt"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "frames"
        folder.mkdir()
        make_frames(folder, args.images)
        commands = {
            "plain": [sys.executable, "-c", PLAIN, str(weights), str(folder), str(Path(tmp) / "plain")],
            "espcn_upscale": [sys.executable, "-c", TIMED_ESPCN, "upscale", "--weights", str(weights), str(folder),
                              "--out", str(Path(tmp) / "ours"), "--device", "cpu", "--overwrite"],
        }
        commands["import_torch"] = [sys.executable, "-c", "import torch"]
        frames = min(args.frames, 8) if args.quick else args.frames
        if frames and importlib.util.find_spec("av") is not None:
            make_clip(Path(tmp) / "clip.mp4", frames, folder / "frame00.png")
            commands["espcn_upscale_video"] = [sys.executable, "-c", TIMED_ESPCN, "upscale", "--weights", str(weights),
                                               str(Path(tmp) / "clip.mp4"), "--out", str(Path(tmp) / "video"),
                                               "--device", "cpu", "--overwrite"]
        times: dict[str, list[float]] = {name: [] for name in commands}
        first: list[float] = []
        first_after_torch: list[float] = []
        backend = ""
        began = time.perf_counter()
        for command in commands.values():  # warm-up: file caches, .pyc files, the ONNX graph cache
            backend = run_timed(command, env)[3] or backend
        progress(f"warm-up done (espcn.py upscale: {backend}); process rounds", 0, repeats, began)
        for round_index in range(repeats):
            for name, command in commands.items():
                seconds, first_image, after_torch, _ = run_timed(command, env)
                times[name].append(seconds)
                if first_image is not None and name == "espcn_upscale":
                    first.append(first_image)
                    first_after_torch.append(after_torch)
            progress("process rounds", round_index + 1, repeats, began)
        ours = np.asarray(Image.open(Path(tmp) / "ours" / "frame00_x3.png"), dtype=np.float64)
        plain = np.asarray(Image.open(Path(tmp) / "plain" / "frame00.png"), dtype=np.float64)
        sizes = {name: sum(f.stat().st_size for f in (Path(tmp) / name).iterdir()) for name in ("ours", "plain")}
    medians = {name: statistics.median(values) for name, values in times.items()}
    result.update({
        "images": args.images, "size": "640x360 -> 1920x1080 (x3, Y model)", "espcn_upscale_backend": backend,
        "whole_process_s": {name: {"median": rounded(medians[name]), "min": rounded(min(times[name])),
                                   "runs": times[name]} for name in times},
        "speedup_median": rounded(medians["plain"] / medians["espcn_upscale"], 3),
        "first_image_after_process_start_s": {"median": rounded(statistics.median(first)), "max": rounded(max(first))},
        "first_image_after_torch_import_s": {"median": rounded(statistics.median(first_after_torch)),
                                             "max": rounded(max(first_after_torch))},
        "speedup_target": 2.0, "speedup_ok": medians["plain"] / medians["espcn_upscale"] >= 2.0,
        "outputs_differ_psnr_db": rounded(10 * np.log10(255**2 / max(np.mean((ours - plain) ** 2), 1e-12)), 2),
        "png_bytes": sizes,
    })
    if "espcn_upscale_video" in medians:
        result["video_1080p_end_to_end"] = {"frames": frames, "process_s": rounded(medians["espcn_upscale_video"]),
                                            "frames_per_s": rounded(frames / medians["espcn_upscale_video"]),
                                            "encoder": "libx264 (VIDEO_CODEC, VIDEO_CRF, VIDEO_PRESET defaults)"}
    finish(result, args)


if __name__ == "__main__":
    main()
