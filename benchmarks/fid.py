"""`gan-aug fid` against pytorch-fid's own pipeline: feature-extraction speed and FID value, same images,
same machine, same process.

Targets (issue 6): our images/s over pytorch-fid's >= 1.0, and |FID difference| < 1e-3. pytorch-fid's
``calculate_fid_given_paths`` is run step by step (its model, its ``compute_statistics_of_path`` for each
folder, its ``calculate_frechet_distance``) so that extraction and the Fréchet step are timed apart; its
InceptionV3 loads the file `gan-aug fid-weights` installed in the torch hub cache (checked: nothing is
downloaded). The two pipelines alternate per folder, so load from other processes hits both alike.
Usage: python benchmarks/fid.py [--images 2048] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance, compute_statistics_of_path
from pytorch_fid.inception import InceptionV3

from expr_common.accelerator import default_device
from expr_common.paths import data_root
from expr_common.synth.ondemand import ensure_synthetic
from gan_aug.fid.features import FeatureExtractor
from gan_aug.fid.metrics import fid_from_features
from gan_aug.fid.sources import open_source
from gan_aug.fid.weights import default_weights_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, peak_rss_mb  # noqa: E402


def _copy_images(count: int, out: Path) -> tuple[Path, Path]:
    """``count`` demo-corpus face crops, alternately into two folders (pytorch-fid reads flat folders)."""
    corpus = ensure_synthetic(data_root() / "synthetic_demo")
    files = sorted((corpus / "affwild2" / "cropped_aligned").glob("*/*.jpg"))
    if len(files) < count:
        raise SystemExit(f"only {len(files)} demo crops, {count} asked for")
    chosen = [files[i] for i in np.random.default_rng(0).choice(len(files), count, replace=False)]
    folders = (out / "a", out / "b")
    for folder in folders:
        folder.mkdir(parents=True)
    for i, path in enumerate(chosen):
        shutil.copy(path, folders[i % 2] / f"{i:05d}.jpg")
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=2048, help="total images, split into two folders")
    parser.add_argument("--device", default=None, help="cuda, cpu (default: cuda if available)")
    parser.add_argument("--batch-size", type=int, default=50)  # pytorch-fid's default
    args = parser.parse_args()
    args.device = str(default_device(args.device))  # pytorch-fid's side takes the same device by name
    os.environ.setdefault("EXPR_PROGRESS", "0")
    weights = default_weights_path()
    if not weights.is_file():
        raise SystemExit(
            f"{weights} is missing: run `gan-aug fid-weights` first (pytorch-fid would download)"
        )
    before = {p.name: p.stat().st_mtime_ns for p in weights.parent.iterdir()}
    timings = {"ours_extract_s": 0.0, "theirs_extract_s": 0.0}
    with tempfile.TemporaryDirectory(prefix="fid-bench-") as tmp:
        folders = _copy_images(args.images, Path(tmp))
        start = time.perf_counter()
        ours = FeatureExtractor(weights, args.device, args.batch_size)
        timings["ours_load_s"] = time.perf_counter() - start
        start = time.perf_counter()
        model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(
            args.device
        )  # as calculate_fid_given_paths
        timings["theirs_load_s"] = time.perf_counter() - start
        features, stats = [], []
        for folder in folders:
            start = time.perf_counter()
            features.append(ours.features_of_items(open_source(folder).items))
            timings["ours_extract_s"] += time.perf_counter() - start
            start = time.perf_counter()
            stats.append(
                compute_statistics_of_path(str(folder), model, args.batch_size, 2048, args.device, 1)
            )
            timings["theirs_extract_s"] += time.perf_counter() - start
        start = time.perf_counter()
        fid_ours = fid_from_features(*features)
        timings["ours_frechet_s"] = time.perf_counter() - start
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fid_theirs = float(calculate_frechet_distance(*stats[0], *stats[1]))
        timings["theirs_frechet_s"] = time.perf_counter() - start
    # pytorch-fid found our file where it looks: nothing new or rewritten in the hub's checkpoints folder.
    untouched = before == {p.name: p.stat().st_mtime_ns for p in weights.parent.iterdir()}
    ours_ips = args.images / timings["ours_extract_s"]
    theirs_ips = args.images / timings["theirs_extract_s"]
    ours_total = sum(v for k, v in timings.items() if k.startswith("ours"))
    theirs_total = sum(v for k, v in timings.items() if k.startswith("theirs"))
    result = {
        "benchmark": "fid",
        "machine": machine() | {"torch_threads": torch.get_num_threads()},
        "config": {"images": args.images, "per_side": args.images // 2, "device": args.device}
        | {"batch_size": args.batch_size, "weights": str(weights), "source": "synthetic_demo affwild2 crops"},
        "ours_images_per_s": round(ours_ips, 3),
        "pytorch_fid_images_per_s": round(theirs_ips, 3),
        "extraction_speed_ratio": round(ours_ips / theirs_ips, 3),
        "end_to_end_speed_ratio": round(theirs_total / ours_total, 3),
        "fid_ours": fid_ours,
        "fid_pytorch_fid": fid_theirs,
        "fid_abs_difference": abs(fid_ours - fid_theirs),
        "targets_met": {
            "speed_ratio_ge_1": ours_ips >= theirs_ips,
            "fid_diff_lt_1e-3": abs(fid_ours - fid_theirs) < 1e-3,
        },
        **{k: round(v, 2) for k, v in timings.items()},
        "pytorch_fid_used_local_weights": untouched,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
