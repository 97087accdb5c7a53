"""``recognizer ablate``: the paper's Table 1 (Base / + GCSA / + GCSA + CF, for V and V+A) on any data.

Every (row, modality, seed) is an ordinary training run in ``DIR/<row>_<modality>/seed<k>/`` (the run
contract holds there), finished by a ``summary.json``. A seed whose ``summary.json`` exists is read back
instead of trained, so an interrupted ablation continues where it stopped; a seed with a checkpoint but no
summary resumes from ``last.pt``. ``DIR/ablation.md`` and ``DIR/ablation.json`` gather the cells.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from expr_common.runs import RunDir, default_run_dir
from recognizer.ablation import (
    ROWS,
    cell_config,
    cell_dir,
    checked_request,
    finished_cell,
    request_cells,
    write_ablation,
    write_cell_summary,
)
from recognizer.outputs import ABLATION_MD
from recognizer.run_config import RecognizerConfig


def _run_cell(cfg: RecognizerConfig, run_dir: Path) -> dict[str, Any]:
    """Train one sub-run unless its summary exists; returns the summary (read back or fresh)."""
    from expr_common.accelerator import agree_on_run_dir, make_accelerator
    from recognizer.trainer import train

    done = finished_cell(cfg, run_dir)
    if done is not None:
        return done
    resume = RunDir(run_dir).last_checkpoint.is_file()  # interrupted mid-training: continue it
    # A cell without last.pt never finished an epoch: start it again (the partial attempt moves aside).
    accelerator = make_accelerator(run_dir)
    run = agree_on_run_dir(accelerator, run_dir, "recognizer-ablate", resume=resume, overwrite=not resume)
    train(cfg, run, resume=resume, accelerator=accelerator)
    summary = write_cell_summary(cfg, run_dir) if accelerator.is_main_process else {}
    summary["skipped"] = False
    return summary


def ablate(
    cfg: RecognizerConfig | str | Path,
    run_dir: str | Path,
    seeds: int = 3,
    rows: list[str] | tuple[str, ...] = ("base", "gcsa", "gcsa_cf"),
    modalities: list[str] | tuple[str, ...] = ("v", "av"),
    overrides: list[str] | tuple[str, ...] = (),
    row_seeds: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Train every (row, modality, seed 0..seeds-1) cell that is not done yet; write and return the table.
    ``row_seeds`` gives some rows another number of seeds (the chain trains its baseline row on all)."""
    request = checked_request(seeds, rows, modalities, overrides, row_seeds)
    root = Path(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    trained = set()
    for cell in request_cells(request):
        sub, cell_cfg = cell_dir(root, *cell), cell_config(cfg, request["overrides"], *cell)
        if not _run_cell(cell_cfg, sub)["skipped"]:
            trained.add(cell)
    options = {"seeds": seeds, "rows": rows, "modalities": modalities, "overrides": overrides}
    return write_ablation(cfg, root, **options, row_seeds=row_seeds, trained=frozenset(trained))


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def run(args: argparse.Namespace) -> int:
    root = args.run_dir or default_run_dir("recognizer-ablate")
    result = ablate(args.config, root, args.seeds, _split(args.rows), _split(args.modalities), args.overrides)
    print((root / ABLATION_MD).read_text(encoding="utf-8"))
    print(f"ablation written to {root} ({sum(len(c) for c in result['cells'].values())} cells)")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``recognizer ablate``."""
    parser.add_argument("--config", type=Path, required=True, help="experiment YAML")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per cell (default 3)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="config override"
    )
    parser.add_argument("--run-dir", type=Path, default=None, help="output folder; rerun it to resume")
    parser.add_argument("--rows", default="base,gcsa,gcsa_cf", help=f"comma list of {','.join(ROWS)}")
    parser.add_argument("--modalities", default="v,av", help="comma list of v,av,a")
