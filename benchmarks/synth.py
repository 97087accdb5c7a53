"""Budget check for `expr-data synth`: wall time and disk size of the tiny and demo presets.

Budgets (issue 2): tiny < 10 s; demo < 90 s on the 2-core machine and < 300 MB on disk.
Usage: python benchmarks/synth.py [--presets tiny demo] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, peak_rss_mb  # noqa: E402

from expr_common.synth.corpus import generate  # noqa: E402
from expr_common.synth.presets import preset  # noqa: E402

BUDGET_S = {"tiny": 10.0, "demo": 90.0}
BUDGET_MB = {"demo": 300.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", nargs="+", default=["tiny", "demo"])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("EXPR_PROGRESS", "0")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.presets:
            cfg = preset(name, 0)
            cfg.workers = args.workers
            start = time.perf_counter()
            summary = generate(cfg, Path(tmp) / name)
            wall = time.perf_counter() - start
            size_mb = summary["bytes"] / 1e6
            files = sum(1 for p in (Path(tmp) / name).rglob("*") if p.is_file())
            results[name] = {
                "wall_s": round(wall, 2),
                "disk_mb": round(size_mb, 1),
                "files": files,
                "within_time_budget": wall < BUDGET_S.get(name, float("inf")),
                "within_disk_budget": size_mb < BUDGET_MB.get(name, float("inf")),
            }
    print(
        json.dumps(
            {
                "benchmark": "synth",
                "machine": machine(),
                "config": {"workers": args.workers, "presets": args.presets},
                "presets": results,
                "peak_rss_mb": round(max(peak_rss_mb(), peak_rss_mb(children=True)), 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
