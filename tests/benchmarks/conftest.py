"""The benchmarks' tests: a tiny bench folder written by the test (the real bench never enters a test)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from expr_common.paths import repo_root

BENCHMARKS = str(repo_root() / "benchmarks")
if BENCHMARKS not in sys.path:
    sys.path.append(BENCHMARKS)  # last: benchmarks/recognizer.py must not shadow the recognizer package


@pytest.fixture
def tiny_bench(tmp_path: Path) -> Path:
    """A bench folder with an ``sfew`` manifest: 3 classes told apart by a bright band's place, 3 splits."""
    rng = np.random.default_rng(0)
    rows = ["sample_id,frames,audio,label,split,subject,domain"]
    for split, n in (("train", 12), ("val", 4), ("test", 4)):
        for i in range(n * 3):
            label = i % 3
            pixels = rng.integers(0, 60, (21, 16, 3))
            pixels[7 * label : 7 * label + 7] += 150  # a bright band: top, middle or bottom
            path = tmp_path / "sfew" / f"{split}_{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels.astype(np.uint8)).save(path)
            rows.append(f"{split}_{i},{path.name},,{label},{split},p{i % 4},sfew")
    (tmp_path / "sfew" / "manifest.csv").write_text("\n".join(rows) + "\n")
    return tmp_path
