"""The chain report's figures (matplotlib): per-class F1 per arm, and the arms' training curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from expr_common.labels import CLASS_NAMES
from expr_common.runs import METRICS_FILE, read_metrics
from expr_experiment.layout import ChainDir
from expr_experiment.report_tables import ARM_LABELS


def plot_per_class(arms: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = np.arange(len(CLASS_NAMES))
    width = 0.8 / len(arms)
    for k, (arm, body) in enumerate(arms.items()):
        values = [body["per_class_f1"][c] or 0.0 for c in CLASS_NAMES]
        ax.bar(x + (k - (len(arms) - 1) / 2) * width, values, width, label=ARM_LABELS[arm])
    ax.set_xticks(x, CLASS_NAMES, rotation=20)
    split = next(iter(arms.values())).get("split", "val")
    ax.set_ylabel(f"{'test' if split == 'test' else 'validation'} F1 (mean over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(layout: ChainDir, seeds: int, path: Path, arms: tuple[str, ...] | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for arm, runs in (layout.arm_runs(seeds, arms) if arms else layout.arm_runs(seeds)).items():
        for k, run in enumerate(runs):
            records = read_metrics(run / METRICS_FILE)
            epochs = [r for r in records if "val_macro_f1" in r]
            steps = [r for r in records if "loss" in r and "step" in r and "val_macro_f1" not in r]
            style = dict(
                color=f"C{list(ARM_LABELS).index(arm)}", alpha=0.8, label=ARM_LABELS[arm] if k == 0 else None
            )
            axes[0].plot([r["epoch"] + 1 for r in epochs], [r["val_macro_f1"] for r in epochs], **style)
            axes[1].plot([r["epoch"] + 1 for r in epochs], [r["train_loss"] for r in epochs], **style)
            axes[2].plot([r["step"] for r in steps], [r["loss"] for r in steps], **style, linewidth=0.7)
    for ax, title in zip(
        axes, ("validation macro-F1", "training loss (epoch mean)", "training loss (steps)")
    ):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch" if "epoch" in title or "F1" in title else "step")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
