"""``expr-experiment report --run-dir DIR``: write ``report.md`` and ``report.json`` again from a chain
folder whose steps are all done (after editing the report code, or to regenerate its figures)."""

from __future__ import annotations

import argparse
from pathlib import Path

from expr_common.config import load_config
from expr_experiment.chain import plan
from expr_experiment.chain_config import ChainConfig
from expr_experiment.layout import ChainDir
from expr_experiment.report import write_report
from expr_experiment.tasks import ChainError


def finished_timings(root: Path, cfg: ChainConfig) -> dict[str, float]:
    """Seconds per step from the chain folder's done markers; a step not done is a :class:`ChainError`."""
    layout, timings, missing = ChainDir(root, cfg.modality), {}, []
    for task in plan(cfg, root):
        marker = layout.marker(task.name)
        if marker.is_file():
            timings[task.name] = float(marker.read_text(encoding="utf-8") or 0)
        else:
            missing.append(task.name)
    if missing:
        raise ChainError(
            f"{root}: {len(missing)} step(s) not done ({', '.join(missing[:5])}"
            f"{', ...' if len(missing) > 5 else ''}); finish them with "
            f"`expr-experiment chain --run-dir {root}`"
        )
    return timings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", type=Path, default=Path("runs/demo"), help="a chain folder")


def run(args: argparse.Namespace) -> int:
    root = Path(args.run_dir)
    layout = ChainDir(root)
    if not layout.config.is_file():
        raise ChainError(f"{root} is not a chain folder: it has no {layout.config.name}")
    cfg = load_config(layout.config, ChainConfig)
    report = write_report(cfg, root, finished_timings(root, cfg), None)
    print(f"report written to {report}")
    return 0
