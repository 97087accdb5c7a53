"""Shared by the robustness tests: one intra-op thread and bit-exact state
comparison (``same_state`` / ``steady_metrics`` fixtures: test modules here are not a package)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from expr_common.runs import read_metrics


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A scratch folder per fuzz module: hypothesis examples overwrite their files in it."""
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # children run with OMP_NUM_THREADS=1: the same kernels, the same sums
    yield
    torch.set_num_threads(threads)


def _assert_same(a, b, where: str = "state") -> None:
    """Equal to the bit: tensors by torch.equal (NaN where NaN), everything else by ==."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        if a.is_floating_point():
            assert torch.equal(a.isnan(), b.isnan()), where
            a, b = a.nan_to_num(0.0), b.nan_to_num(0.0)
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _steady(path: Path, volatile: str) -> list[dict]:
    """metrics.jsonl without its wall-clock figure (which differs between any two runs)."""
    return [{k: v for k, v in r.items() if k != volatile} for r in read_metrics(path)]


@pytest.fixture
def same_state():
    return _assert_same


@pytest.fixture
def steady_metrics():
    return _steady
