"""Class fidelity's bookkeeping (:mod:`expr_experiment.fidelity`): the labels and predictions of one side,
and the report of both sides, per class and overall. Pure functions of the predictions: no model, no I/O."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from expr_common.labels import CLASS_NAMES, NUM_CLASSES, UNLABELLED
from expr_common.metrics import confusion_matrix

FEW_SAMPLES = 20  # below this many samples on a side, a class's recall moves by 5 points per sample


@dataclass
class Scored:
    """Labels and visual-branch predictions of one side, and what its listing skipped; for edits of real
    windows (a manifest with a ``source_class`` column) also each sample's source class."""

    labels: list[int] = field(default_factory=list)
    preds: list[int] = field(default_factory=list)
    sources: list[int] = field(default_factory=list)  # UNLABELLED where a sample names no source class
    ids: list[str] = field(default_factory=list)  # the manifest row (sample_id) of each synthetic sample
    skipped: Counter[str] = field(default_factory=Counter)

    def confusion(self) -> np.ndarray:
        return confusion_matrix(np.asarray(self.labels), np.asarray(self.preds), NUM_CLASSES)

    def kept_source(self) -> np.ndarray:
        """Per target class, [edits whose prediction is their source's class, edits with a source class]."""
        counts = np.zeros((NUM_CLASSES, 2), dtype=np.int64)
        for label, pred, source in zip(self.labels, self.preds, self.sources, strict=True):
            if source != UNLABELLED:
                counts[label] += (pred == source, 1)
        return counts


def recalls(cm: np.ndarray) -> list[float | None]:
    """Row-normalised diagonal: per true class, the share predicted as that class (None: no samples)."""
    rows = cm.sum(axis=1)
    return [float(cm[c, c] / rows[c]) if rows[c] else None for c in range(len(cm))]


def fidelity_report(synth: Scored, real: Scored, train: Scored | None = None) -> dict[str, Any]:
    """Per class and overall: the synthetic samples' recall beside the real split's. For edits of real
    windows also how often the recognizer calls an edit by its source's class (``kept_source_rate``) and,
    with ``train``, its recall on the real training windows the edits' sources are among (``train_recall``):
    a recognizer that learnt the few people of a class by heart names their edited faces by their old class
    rather than by what the edit shows."""
    kept = synth.kept_source()
    train_cm = train.confusion() if train is not None else None
    train_rec = recalls(train_cm) if train_cm is not None else None
    cms = {"synthetic": synth.confusion(), "real": real.confusion()}
    rec = {k: recalls(cm) for k, cm in cms.items()}
    counts = {k: cm.sum(axis=1) for k, cm in cms.items()}
    classes, warnings, coarse = {}, [], []
    for c, name in enumerate(CLASS_NAMES):
        n_synth, n_real = int(counts["synthetic"][c]), int(counts["real"][c])
        if not (n_synth or n_real):
            continue
        classes[name] = {
            "label": c,
            "n_synth": n_synth,
            "synth_recall": rec["synthetic"][c],
            "n_real": n_real,
            "real_recall": rec["real"][c],
        }
        if kept[:, 1].any():
            classes[name]["kept_source_rate"] = float(kept[c, 0] / kept[c, 1]) if kept[c, 1] else None
        if train_cm is not None:
            classes[name] |= {"n_train": int(train_cm[c].sum()), "train_recall": train_rec[c]}
        few = [side for side, n in (("synthetic", n_synth), ("real", n_real)) if 0 < n < FEW_SAMPLES]
        if few:
            coarse.append(f"{name} ({', '.join(few)})")
        if n_synth and not n_real:
            warnings.append(f"{name}: no real samples in the split to compare the synthetic recall with")
    if coarse:
        warnings.append(f"fewer than {FEW_SAMPLES} samples, so a coarse recall: {', '.join(coarse)}")
    both = [name for name, c in classes.items() if c["n_synth"] and c["n_real"]]
    overall = {
        "n_synth": int(cms["synthetic"].sum()),
        "n_real": int(cms["real"].sum()),
        "synth_accuracy": float(np.trace(cms["synthetic"]) / max(cms["synthetic"].sum(), 1)),
        "real_accuracy": float(np.trace(cms["real"]) / max(cms["real"].sum(), 1)),
        # Mean over the classes present on both sides: the two means compare like with like.
        "classes_compared": both,
        "synth_mean_recall": float(np.mean([classes[n]["synth_recall"] for n in both])) if both else None,
        "real_mean_recall": float(np.mean([classes[n]["real_recall"] for n in both])) if both else None,
    }
    if kept[:, 1].any():
        overall["kept_source_rate"] = float(kept[:, 0].sum() / kept[:, 1].sum())
    if train_cm is not None:
        overall |= {
            "n_train": int(train_cm.sum()),
            "train_accuracy": float(np.trace(train_cm) / train_cm.sum()),
        }
    return {
        "classes": classes,
        "overall": overall,
        "confusion": {k: cm.tolist() for k, cm in cms.items()},
        "warnings": warnings,
    }
