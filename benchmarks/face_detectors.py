"""Face detectors on frames whose true face position is known (issue 16, part 2): OpenCV's Haar cascade
against MTCNN (facenet-pytorch), both as prepare and predict run them (strict settings, frames scaled to
``detect_side``).

A procedural corpus (``--preset``, AFEW and CK+ only, generated first and not timed) records where its
renderer drew every face (``face_boxes.json``: the square the face is drawn into, whose width the face
fills to about 88%). Per dataset and detector: the share of frames with a box, the share whose box is
centred on the drawn face (``on_face``: centre in the square's middle half, side a quarter to all of the
square's), the mean IoU of the boxes with the square (low for a tight box: the square holds hair and neck
too), and milliseconds per frame (one thread).
Usage: python benchmarks/face_detectors.py [--preset demo] [--clips 4] [--detectors haar mtcnn]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import machine, synth  # noqa: E402

from expr_common.data.config import PreprocessConfig  # noqa: E402
from expr_common.data.faces import detectors_for, read_image  # noqa: E402
from expr_common.media import read_video  # noqa: E402
from expr_common.paths import repo_root  # noqa: E402
from expr_common.synth.corpus import FACE_BOXES  # noqa: E402


def iou(box, square) -> float:
    x, y, w, h = box[:4]
    sx, sy, side = square
    ix = max(0.0, min(x + w, sx + side) - max(x, sx))
    iy = max(0.0, min(y + h, sy + side) - max(y, sy))
    inter = ix * iy
    return inter / (w * h + side * side - inter)


def frames_with_truth(corpus: Path, clips: int) -> dict[str, list[tuple[np.ndarray, list[int]]]]:
    truth = json.loads((corpus / FACE_BOXES).read_text())
    out: dict[str, list] = {"afew": [], "ckplus": []}
    for path, boxes in sorted(truth["afew"].items())[:clips]:
        frames = read_video(corpus / "afew" / path)
        out["afew"] += [(f, b) for f, b in zip(frames, boxes)]
    for sequence, box in sorted(truth["ckplus"].items())[:clips]:
        images = sorted((corpus / "ckplus").rglob(f"{sequence}/*.png"))
        out["ckplus"] += [(read_image(str(p)), box) for p in images]
    return out


def on_face(box, square) -> bool:
    """The box is centred on the drawn face: its centre inside the square's middle half, its side between
    a quarter of the square's and the square's (IoU with the square misjudges a tight face box)."""
    x, y, w, h = box[:4]
    sx, sy, side = square
    cx, cy = x + w / 2 - sx, y + h / 2 - sy
    return side / 4 <= cx <= 3 * side / 4 and side / 4 <= cy <= 3 * side / 4 and side / 4 <= max(w, h) <= side


def measure(name: str, frames: list[tuple[np.ndarray, list[int]]]) -> dict:
    detect = detectors_for(PreprocessConfig(face_detector=name))[0]
    detect(frames[0][0])  # warm-up: loading, first allocations
    started = time.perf_counter()
    boxes = [detect(f) for f, _ in frames]
    seconds = time.perf_counter() - started
    found = [(b, t) for b, (_, t) in zip(boxes, frames) if b is not None]
    centred = [b for b, t in found if on_face(b, t)]
    return {
        "frames": len(frames),
        "detected": round(len(found) / len(frames), 3),
        "on_face": round(len(centred) / len(frames), 3),
        "mean_iou": round(float(np.mean([iou(b, t) for b, t in found])), 3) if found else None,
        "ms_per_frame": round(1000 * seconds / len(frames), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--clips", type=int, default=24, help="AFEW clips and CK+ sequences to use")
    parser.add_argument("--detectors", nargs="+", default=["haar", "mtcnn"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in prepare's workers
    with tempfile.TemporaryDirectory(dir=repo_root()) as tmp:
        corpus = Path(tmp) / "corpus"
        few_videos = {
            "affwild2.train_videos": 2, "affwild2.val_videos": 1, "affwild2.test_videos": 0,
            "affwild2.min_segments_per_class": 1, "affwild2.seconds": "[40,40]",
        }  # fmt: skip
        synth(corpus, args.preset, few_videos, args.seed)
        frames = frames_with_truth(corpus, args.clips)
        results = {d: {name: measure(name, f) for name in args.detectors} for d, f in frames.items()}
    for by_detector in results.values():
        if "haar" in by_detector:
            for row in by_detector.values():
                row["time_vs_haar"] = round(row["ms_per_frame"] / by_detector["haar"]["ms_per_frame"], 2)
    print(json.dumps({"benchmark": "face_detectors", "machine": machine(), "preset": args.preset,
                      "results": results}))  # fmt: skip


if __name__ == "__main__":
    main()
