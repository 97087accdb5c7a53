"""`expr-data prepare` at real-corpus settings, and what that means for Aff-Wild2 (issue 15, part 7).

A slice of the ``full`` preset's Aff-Wild2 (its 480x360 video at 30 fps, 112-px aligned crops, 44.1 kHz
audio; ``--videos`` videos of ``--seconds`` s, the preset's other datasets cut to a minimum, generated first
and not timed) is prepared with the paper's preprocessing (112 px, K=8, 2 s windows at 1 s stride, 64-mel
log-mel at 25/10 ms): windows/s, annotated frames/s, cache MB per 1,000 windows. The extrapolation to
Aff-Wild2's expression set (548 videos, 2.7 M frames at 30 fps) assumes the same per-window cost: windows =
frames / fps / stride, time = windows / rate (on one 2-core machine, and on n machines with ``--shard i/n``).
Usage: python benchmarks/prepare_full.py [--videos 4] [--seconds 40] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, synth_slice  # noqa: E402

from expr_common.config import from_dict  # noqa: E402
from expr_common.data.config import DataConfig  # noqa: E402
from expr_common.data.prepare import prepare  # noqa: E402
from expr_common.paths import repo_root  # noqa: E402

AFFWILD2_VIDEOS, AFFWILD2_FRAMES, AFFWILD2_FPS = 548, 2_700_000, 30.0  # the ABAW expression set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=repo_root()) as tmp:
        corpus = Path(tmp) / "corpus"
        started = time.perf_counter()
        synth_slice(corpus, args.videos, args.seconds, args.seed)
        synth_s = time.perf_counter() - started
        config = from_dict(
            {
                "name": "full_slice",
                "sources": [{"name": "affwild2", "format": "affwild2", "root": str(corpus / "affwild2")}],
                "preprocess": {"frames": 8, "image_size": 112},  # the rest: the paper's defaults
                "cache": {"root": str(Path(tmp) / "cache"), "workers": args.workers},
            },
            DataConfig,
        )
        started = time.perf_counter()
        summary = prepare(config, workers=args.workers)
        wall = time.perf_counter() - started
        cache_mb = sum(p.stat().st_size for p in (Path(tmp) / "cache").iterdir()) / 1e6
    pre = config.preprocess
    frames = args.videos * args.seconds * AFFWILD2_FPS
    rate = summary.samples / wall
    windows = AFFWILD2_FRAMES / AFFWILD2_FPS / pre.stride_seconds
    hours = windows / rate / 3600
    result = {
        "benchmark": "prepare_full",
        "machine": machine(),
        "slice": {"videos": args.videos, "seconds_each": args.seconds, "fps": AFFWILD2_FPS, "frames": frames},
        "preprocess": {"image_size": pre.image_size, "frames": pre.frames, "window_s": pre.window_seconds,
                       "stride_s": pre.stride_seconds, "n_mels": pre.n_mels, "hop_ms": pre.hop_ms},
        "workers": args.workers,
        "synth_s": round(synth_s, 1),
        "windows": summary.samples,
        "prepare_wall_s": round(wall, 1),
        "windows_per_s": round(rate, 2),
        "video_frames_per_s": round(frames / wall, 1),
        "cache_mb": round(cache_mb, 1),
        "mb_per_1000_windows": round(1000 * cache_mb / max(1, summary.samples), 1),
        "affwild2_extrapolation": {
            "videos": AFFWILD2_VIDEOS,
            "frames": AFFWILD2_FRAMES,
            "windows": round(windows),
            "cache_gb": round(windows * cache_mb / max(1, summary.samples) / 1000, 1),
            "hours_one_machine": round(hours, 1),
            "hours_16_machines": round(hours / 16, 2),
        },
    }  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
