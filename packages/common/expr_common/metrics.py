"""The ABAW expression metric and its companions: per-frame macro-F1 over the classes present,
per-class F1, accuracy, confusion matrices, and temporal smoothing of per-frame probabilities.

Frames labelled -1 are never scored. "Classes present" follows scikit-learn's ``f1_score(average=
"macro")``: the union of classes in the labels and in the predictions, so a model that predicts a class
absent from the labels is charged an F1 of 0 for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import uniform_filter1d

from expr_common.labels import CLASS_NAMES, NUM_CLASSES, UNLABELLED


def _scored(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.size} labels but {y_pred.size} predictions")
    keep = y_true != UNLABELLED
    return y_true[keep].astype(np.int64), y_pred[keep].astype(np.int64)


def confusion_matrix(y_true, y_pred, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Counts ``[true, pred]`` over scored frames."""
    t, p = _scored(y_true, y_pred)
    if t.size and (t.max() >= num_classes or p.min() < 0 or p.max() >= num_classes or t.min() < 0):
        raise ValueError(f"labels and predictions must be in 0..{num_classes - 1} (labels may be -1)")
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_f1(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(axis=0) + cm.sum(axis=1)  # (tp + fp) + (tp + fn)
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def present_classes(cm: np.ndarray) -> np.ndarray:
    return np.flatnonzero((cm.sum(axis=0) + cm.sum(axis=1)) > 0)


def macro_f1(y_true, y_pred, num_classes: int = NUM_CLASSES) -> float:
    """Mean F1 over the classes present in labels or predictions (scikit-learn's macro average)."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    present = present_classes(cm)
    return float(per_class_f1(cm)[present].mean()) if present.size else 0.0


def evaluate_predictions(y_true, y_pred, num_classes: int = NUM_CLASSES) -> dict[str, Any]:
    """The ``metrics.json`` block: macro_f1, per_class_f1 (by name; null for absent classes), accuracy,
    scored frame count, and the confusion matrix."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    f1 = per_class_f1(cm)
    present = set(present_classes(cm).tolist())
    total = int(cm.sum())
    return {
        "macro_f1": float(f1[sorted(present)].mean()) if present else 0.0,
        "per_class_f1": {
            CLASS_NAMES[c]: (float(f1[c]) if c in present else None) for c in range(num_classes)
        },
        "accuracy": float(np.trace(cm) / total) if total else 0.0,
        "frames": total,
        "confusion": cm.tolist(),
    }


def smooth_probabilities(prob: np.ndarray, window: int) -> np.ndarray:
    """Moving average of per-frame probabilities ``[T, C]`` over ``window`` frames (centred; edges repeat
    the end frames). ``window`` <= 1 returns the input."""
    if window <= 1:
        return prob
    return uniform_filter1d(np.asarray(prob, np.float64), size=int(window), axis=0, mode="nearest")


def plot_confusion(cm: np.ndarray, path: str | Path, title: str = "Confusion matrix") -> Path:
    """Row-normalised confusion matrix with counts, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    names = CLASS_NAMES[: cm.shape[0]]
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
