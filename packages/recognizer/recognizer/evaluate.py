"""``recognizer evaluate``: a checkpoint on a cached split -> metrics.json, predictions.csv, figures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from expr_common.accelerator import make_accelerator
from expr_common.atomic import write_json
from expr_common.data.config import load_data_config
from expr_common.data.dataset import CachedClips, make_loader
from expr_common.data.prepare import prepare_cached
from expr_common.errors import DataError
from expr_common.metrics import plot_confusion
from expr_common.outputs import OutputError, add_overwrite_argument
from expr_common.paths import cli_path, resolve_path
from expr_common.runs import RunDir, open_run_dir
from expr_common.subcommands import positive_int
from recognizer.evaluation import (
    frames_from_windows,
    plot_grid,
    predict_windows,
    score,
    select_fusion_and_smoothing,
    write_predictions,
)
from recognizer.inference import load_model
from recognizer.inputs import check_same_inputs
from recognizer.outputs import FUSION_GRID_FILE


def evaluate(
    checkpoint: str | Path,
    run: RunDir,
    *,
    data: str | None = None,
    split: str = "val",
    select: bool = False,
    batch_size: int = 64,
    accelerator=None,
) -> dict[str, Any]:
    accelerator = accelerator or make_accelerator(run.root)
    model, cfg, state = load_model(checkpoint)
    data_path, overrides = (data, []) if data else (cfg.data, cfg.data_overrides)
    data_cfg = load_data_config(resolve_path(data_path), overrides)
    check_same_inputs(state, data_cfg.preprocess, f"checkpoint {checkpoint}", resolve_path(data_path))
    cache = prepare_cached(data_cfg, accelerator).path
    dataset = CachedClips(cache, split=split, source=cfg.train.val_sources)
    if len(dataset) == 0:
        raise DataError(f"split {split!r} of {cache} has no samples from sources {cfg.train.val_sources}")
    loader = accelerator.prepare(make_loader(dataset, batch_size, workers=cfg.train.workers))
    model = accelerator.prepare(model)
    preds = predict_windows(model, loader, accelerator)
    if not accelerator.is_main_process:
        return {}
    table = frames_from_windows(dataset, preds)
    selection = select_fusion_and_smoothing(table, cfg.train.smoothing_windows) if select else None
    selection = (
        selection or state.get("selection") or {"m": cfg.model.fusion.m, "n": cfg.model.fusion.n, "window": 1}
    )
    m, n, window = selection.get("m"), selection.get("n"), int(selection.get("window") or 1)
    metrics = score(table, m, n, window)
    unsmoothed = score(table, m, n, 1)
    metrics.update(
        split=split,
        checkpoint=str(checkpoint),
        fusion={"m": m, "n": n},
        smoothing_window=window,
        macro_f1_unsmoothed=unsmoothed["macro_f1"],
        per_branch={
            key: score_branch(table, key)["macro_f1"]
            for key in ("prob_a", "prob_v")
            if getattr(table, key) is not None
        },
    )
    write_json(run.eval_metrics, metrics)
    prob = table.prob if m is None else table.fused(m, n)
    write_predictions(table, table.smoothed(prob, window).argmax(axis=1), run.predictions)
    plot_confusion(
        metrics["confusion"], run.root / "confusion.png", f"{split}: macro-F1 {metrics['macro_f1']:.3f}"
    )
    if selection.get("grid"):
        plot_grid(selection["grid"], run.root / FUSION_GRID_FILE)
        write_json(run.root / "fusion_grid.json", selection)
    return metrics


def score_branch(table, key: str) -> dict[str, Any]:
    """One branch on its own (the V-only / A-only numbers), on frames that have that modality."""
    from expr_common.metrics import evaluate_predictions

    mask = table.has_audio if key == "prob_a" else table.has_video
    label = table.label.copy()
    label[~mask] = -1
    return evaluate_predictions(label, getattr(table, key).argmax(axis=1))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=cli_path, default=None, help="data config (default: the checkpoint's)")
    parser.add_argument("--split", default="val", choices=("train", "val", "test"))
    parser.add_argument(
        "--select",
        action="store_true",
        help="choose (m, n) and the smoothing window on this split instead of the checkpoint's",
    )
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--run-dir", type=Path, default=None)
    add_overwrite_argument(parser, "an earlier evaluation's files in --run-dir")


def check_no_evaluation(run: RunDir, overwrite: bool) -> None:
    """An evaluation already in ``run`` (its metrics.json) is kept unless ``overwrite``: a second split or
    checkpoint would otherwise replace the first one's figures without a word."""
    if overwrite or not run.eval_metrics.is_file():
        return
    try:
        held = json.loads(run.eval_metrics.read_text(encoding="utf-8"))
        what = f" (split {held.get('split')!r}, checkpoint {held.get('checkpoint')})"
    except (OSError, ValueError, AttributeError):
        what = ""
    raise OutputError(
        f"{run.eval_metrics} already holds an evaluation{what}: choose another --run-dir or pass --overwrite"
    )


def run(args: argparse.Namespace) -> int:
    run_dir = open_run_dir(args.run_dir, "recognizer-evaluate", fresh=False)  # it writes beside a run
    check_no_evaluation(run_dir, args.overwrite)
    metrics = evaluate(
        args.checkpoint,
        run_dir,
        data=args.data,
        split=args.split,
        select=args.select,
        batch_size=args.batch_size,
    )
    if metrics:
        keys = ("macro_f1", "accuracy", "frames", "fusion", "smoothing_window")
        print(json.dumps({k: metrics[k] for k in keys}, indent=2))
        print(f"metrics written to {run_dir.eval_metrics}")
    return 0
