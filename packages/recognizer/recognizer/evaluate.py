"""``recognizer evaluate``: a checkpoint on a cached split -> metrics.json, predictions.csv, figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from expr_common.checkpoint import config_from_checkpoint, load_checkpoint
from expr_common.data.config import load_data_config
from expr_common.data.dataset import CachedClips, make_loader
from expr_common.data.prepare import prepare_cached
from expr_common.metrics import plot_confusion
from expr_common.runs import RunDir, resolve_path
from recognizer.evaluation import (
    frames_from_windows,
    plot_grid,
    predict_windows,
    score,
    select_fusion_and_smoothing,
    write_predictions,
)
from recognizer.model import AudioVisualRecognizer
from recognizer.settings import RecognizerConfig


def load_model(checkpoint: str | Path) -> tuple[AudioVisualRecognizer, RecognizerConfig, dict[str, Any]]:
    """Rebuild the model from the config stored in the checkpoint (no YAML needed)."""
    state = load_checkpoint(checkpoint)
    cfg = config_from_checkpoint(state, RecognizerConfig, f"checkpoint {checkpoint}")
    model = AudioVisualRecognizer(cfg.model)
    model.load_state_dict(state["model"])
    return model, cfg, state


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
    from recognizer.trainer import make_accelerator

    accelerator = accelerator or make_accelerator(run)
    model, cfg, state = load_model(checkpoint)
    data_path, overrides = (data, []) if data else (cfg.data, cfg.data_overrides)
    data_cfg = load_data_config(resolve_path(data_path), overrides)
    cache = prepare_cached(data_cfg, accelerator).path
    dataset = CachedClips(cache, split=split, source=cfg.train.val_sources)
    if len(dataset) == 0:
        raise ValueError(f"split {split!r} of {cache} has no samples from sources {cfg.train.val_sources}")
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
    run.root.mkdir(parents=True, exist_ok=True)
    run.eval_metrics.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    prob = table.prob if m is None else table.fused(m, n)
    write_predictions(table, table.smoothed(prob, window).argmax(axis=1), run.predictions)
    plot_confusion(
        metrics["confusion"], run.root / "confusion.png", f"{split}: macro-F1 {metrics['macro_f1']:.3f}"
    )
    if selection.get("grid"):
        plot_grid(selection["grid"], run.root / "fusion_grid.png")
        (run.root / "fusion_grid.json").write_text(json.dumps(selection, indent=2) + "\n", encoding="utf-8")
    return metrics


def score_branch(table, key: str) -> dict[str, Any]:
    """One branch on its own (the V-only / A-only numbers), on frames that have that modality."""
    from expr_common.metrics import evaluate_predictions

    mask = table.has_audio if key == "prob_a" else table.has_video
    label = table.label.copy()
    label[~mask] = -1
    return evaluate_predictions(label, getattr(table, key).argmax(axis=1))
