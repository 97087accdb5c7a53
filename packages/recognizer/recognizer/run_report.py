"""``report.md`` of a ``recognizer train`` run: what the run reached, read from what it wrote (the
selection on validation and the per-epoch metrics), with its figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from expr_common.atomic import write_text
from expr_common.labels import CLASS_NAMES
from expr_common.runs import RunDir
from recognizer.outputs import CONFUSION_FILE, FUSION_GRID_FILE, SELECTION_FILE


def write_run_report(run: RunDir, selection: dict[str, Any], history: list[dict[str, Any]]) -> Path:
    """``run/report.md``: the validation macro-F1 of the best checkpoint before and after the fusion and
    smoothing selection, its per-class F1, the epochs, and links to the figures beside it."""
    metrics = selection["val_metrics"]
    best = max(history, key=lambda r: r["val_macro_f1"]) if history else None
    lines = [
        f"# Recognizer training run: {run.root.name}",
        "",
        f"Validation macro-F1 of the best checkpoint: **{selection['val_macro_f1']:.4f}** with fusion "
        f"m={selection['m']}, n={selection['n']} and smoothing window {selection['window']}, chosen on this "
        f"same validation split (optimistic; see `{SELECTION_FILE}`)"
        + (
            f"; {best['val_macro_f1']:.4f} at epoch {best['epoch'] + 1} before the selection."
            if best
            else "."
        ),
        "",
        f"Accuracy {metrics['accuracy']:.4f}.",
        "",
        "| class | F1 |",
        "|---|---|",
    ]
    for name in CLASS_NAMES:
        value = metrics["per_class_f1"].get(name)
        lines.append(f"| {name} | {'-' if value is None else f'{value:.3f}'} |")
    if history:
        lines += ["", "| epoch | train loss | val macro-F1 |", "|---|---|---|"]
        lines += [f"| {r['epoch'] + 1} | {r['train_loss']:.4f} | {r['val_macro_f1']:.4f} |" for r in history]
    lines += ["", f"![validation confusion]({CONFUSION_FILE})"]
    if (run.root / FUSION_GRID_FILE).is_file():
        lines += ["", f"![fusion grid]({FUSION_GRID_FILE})"]
    return write_text(run.report, "\n".join(lines) + "\n")
