"""Budget check for `expr-data prepare` and the cache-backed DataLoader on the demo corpus.

Budgets (issue 3): prepare < 120 s on 2 cores with peak RAM < 4 GB (the process and its workers, summed);
DataLoader with 2 workers at K=8, 64 px >= 2,000 clips/s. The corpus is generated first if missing (not
timed); prepare writes a fresh cache in a temporary folder, so it always builds.
Usage: python benchmarks/data.py [--config configs/data/synthetic_demo.yaml] [--workers 2] [--batch 64]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil  # an accelerate dependency

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

from expr_common.config import to_dict  # noqa: E402
from expr_common.data.config import load_data_config  # noqa: E402
from expr_common.data.dataset import CachedClips, collate, make_loader  # noqa: E402
from expr_common.data.prepare import prepare  # noqa: E402
from expr_common.data.roots import dataset_root  # noqa: E402
from expr_common.paths import repo_root  # noqa: E402

PREPARE_BUDGET_S = 120.0
PREPARE_BUDGET_MB = 4096.0
LOADER_BUDGET_CLIPS_PER_S = 2000.0


class TreeMemory:
    """Peak of the summed resident memory of this process and all its children, sampled every 50 ms
    (``ru_maxrss`` only knows the largest single process, not the pool's total)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.05)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def loader_rate(loader, epochs: int) -> tuple[float, int]:
    """Clips per second over ``epochs`` passes after one warm-up pass (workers started, pages cached)."""
    for _ in loader:
        pass
    clips, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            clips += len(batch["label"])
    return clips / (time.perf_counter() - start), clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/data/synthetic_demo.yaml")
    parser.add_argument("--workers", type=int, default=2, help="prepare processes and loader workers")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5, help="timed loader passes over the cache")
    args = parser.parse_args()
    os.environ.setdefault("EXPR_PROGRESS", "0")
    config = load_data_config(repo_root() / args.config)
    for source in config.sources:
        dataset_root(source.root)  # generate the corpus now, outside the timing
    with tempfile.TemporaryDirectory() as tmp:
        with TreeMemory() as memory:
            start = time.perf_counter()
            summary = prepare(config, Path(tmp) / "cache", workers=args.workers)
            prepare_wall = time.perf_counter() - start
        start = time.perf_counter()
        prepare(config, Path(tmp) / "cache", workers=args.workers)
        reuse_wall = time.perf_counter() - start

        train = CachedClips(Path(tmp) / "cache", train=True, augment=config.augment)
        shuffled = make_loader(train, args.batch, workers=args.workers, shuffle=True, seed=0)
        balanced = make_loader(train, args.batch, workers=args.workers, balanced=True, seed=0)
        rate, clips = loader_rate(shuffled, args.epochs)
        balanced_rate, _ = loader_rate(balanced, args.epochs)
        # References in this process, no DataLoader: the same batched reads in a plain loop, and item by
        # item with collate (the path a loader without __getitems__ would take).
        order = list(range(len(train)))
        start = time.perf_counter()
        for _ in range(args.epochs):
            for first in range(0, len(order), args.batch):
                train.__getitems__(order[first : first + args.batch])
        plain_rate = args.epochs * len(train) / (time.perf_counter() - start)
        start = time.perf_counter()
        for first in range(0, len(order), args.batch):
            collate([train[i] for i in order[first : first + args.batch]])
        item_rate = len(train) / (time.perf_counter() - start)
        cache_mb = sum(p.stat().st_size for p in (Path(tmp) / "cache").iterdir()) / 1e6
    result = {
        "benchmark": "data",
        "machine": machine(),
        "config": {
            "file": args.config,
            "workers": args.workers,
            "batch": args.batch,
            "data": to_dict(config),
        },
        "samples": summary.samples,
        "shards": summary.shards,
        "cache_mb": round(cache_mb, 1),
        "faces": summary.faces,
        "prepare_wall_s": round(prepare_wall, 2),
        "prepare_peak_rss_mb": round(memory.peak / 2**20, 1),
        "prepare_reuse_wall_s": round(reuse_wall, 3),
        "loader_clips_per_s": round(rate, 1),
        "loader_balanced_clips_per_s": round(balanced_rate, 1),
        "plain_loop_clips_per_s": round(plain_rate, 1),
        "loader_vs_plain_loop": round(rate / plain_rate, 2),
        "per_item_collate_clips_per_s": round(item_rate, 1),
        "loader_timed_clips": clips,
        "within_prepare_budget": prepare_wall < PREPARE_BUDGET_S and memory.peak / 2**20 < PREPARE_BUDGET_MB,
        "within_loader_budget": rate >= LOADER_BUDGET_CLIPS_PER_S,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
