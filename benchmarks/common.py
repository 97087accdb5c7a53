"""Shared benchmark helpers: the machine block every benchmark JSON carries, peak memory, and a slice of
the ``full`` preset's corpus."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from expr_common.synth import ondemand

# The benchmarks are command lines: like the toolkit's, they make a missing procedural corpus on first use.
ondemand.enable()


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }


def timed(fn, steps: int) -> float:
    """Seconds per call of ``fn`` over ``steps`` calls, after one warm-up call (allocator, kernel choice)."""
    fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory of this process (or of its finished children) in MB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024.0


def synth(out: Path, preset: str, sets: dict, seed: int = 0) -> None:
    """``expr-data synth`` of ``preset`` with ``--set key=value`` for each of ``sets`` (not timed)."""
    cmd = [str(Path(sys.executable).with_name("expr-data")), "synth", "--out", str(out), "--preset", preset]
    cmd += ["--seed", str(seed)] + [item for k, v in sets.items() for item in ("--set", f"{k}={v}")]
    subprocess.run(cmd, check=True, env={**os.environ, "EXPR_PROGRESS": "0"}, stdout=subprocess.DEVNULL)


def synth_slice(out: Path, videos: int, seconds: float, seed: int) -> None:
    """A slice of the ``full`` preset: ``videos`` Aff-Wild2 videos of ``seconds`` s (480x360, 30 fps, with
    sound), the other datasets cut to a minimum."""
    sets = {
        "affwild2.train_videos": videos - 1, "affwild2.val_videos": 1, "affwild2.test_videos": 0,
        "affwild2.seconds": f"[{seconds},{seconds}]", "affwild2.min_segments_per_class": 1,
        "ckplus.subjects": 1, "afew.train_per_class": 1,
        "afew.val_per_class": 1,
    }  # fmt: skip
    synth(out, "full", sets, seed)
