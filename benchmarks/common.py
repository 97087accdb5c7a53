"""Shared benchmark helpers: the machine block every benchmark JSON carries, and peak memory."""

from __future__ import annotations

import os
import platform
import resource
import time

import torch


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
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
