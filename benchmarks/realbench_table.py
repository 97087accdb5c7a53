"""The real-data bench's table (benchmarks/realbench.py): per set and model, the runs of each seed and their
mean and standard deviation, and the text table it prints. No training here: tests import it."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from typing import Any

MODELS = ("recognizer", "plain")  # every set has both; arms such as "recognizer_pretrained" are extra
RUN_KEYS = ("seed", "macro_f1", "accuracy", "per_class_f1", "train_s", "items_per_s")


def run_record(seed: int, metrics: Mapping[str, Any], train_s: float, items: int) -> dict[str, Any]:
    """One run: test metrics (an ``evaluate_predictions`` block) and the training time over ``items``
    training samples seen (epochs x training set)."""
    return {
        "seed": int(seed),
        "macro_f1": round(float(metrics["macro_f1"]), 4),
        "accuracy": round(float(metrics["accuracy"]), 4),
        "per_class_f1": {
            name: (None if f1 is None else round(float(f1), 4))
            for name, f1 in metrics["per_class_f1"].items()
        },
        "train_s": round(float(train_s), 1),
        "items_per_s": round(items / train_s, 1) if train_s > 0 else None,
    }


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return round(mean, 4), round(std, 4)


def summarize(runs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``{"macro_f1_mean", "macro_f1_std", "accuracy_mean", "accuracy_std", "per_class_f1_mean",
    "items_per_s_mean", "runs"}`` over the runs of one model on one set (sample std; 0 for one run)."""
    runs = sorted(runs, key=lambda r: r["seed"])
    if not runs:
        raise ValueError("no runs to summarise")
    f1_mean, f1_std = _mean_std([r["macro_f1"] for r in runs])
    acc_mean, acc_std = _mean_std([r["accuracy"] for r in runs])
    classes = runs[0]["per_class_f1"]
    per_class = {
        name: _mean_std([r["per_class_f1"][name] for r in runs])[0]
        for name in classes
        if all(r["per_class_f1"].get(name) is not None for r in runs)
    }
    speeds = [r["items_per_s"] for r in runs if r.get("items_per_s")]
    return {
        "macro_f1_mean": f1_mean,
        "macro_f1_std": f1_std,
        "accuracy_mean": acc_mean,
        "accuracy_std": acc_std,
        "per_class_f1_mean": per_class,
        "items_per_s_mean": round(statistics.fmean(speeds), 1) if speeds else None,
        "runs": [dict(r) for r in runs],
    }


def build_table(runs: Mapping[str, Mapping[str, list[Mapping[str, Any]]]]) -> dict[str, Any]:
    """``{set: {model: [run, ...]}}`` -> ``{"sets": {set: {model: summary, "gain": recognizer - plain}}}``."""
    sets: dict[str, Any] = {}
    for name, by_model in runs.items():
        entry: dict[str, Any] = {model: summarize(r) for model, r in by_model.items() if r}
        if all(m in entry for m in MODELS):
            gain = entry["recognizer"]["macro_f1_mean"] - entry["plain"]["macro_f1_mean"]
            entry["gain"] = round(gain, 4)
        if "recognizer_pretrained" in entry and "recognizer" in entry:
            gain = entry["recognizer_pretrained"]["macro_f1_mean"] - entry["recognizer"]["macro_f1_mean"]
            entry["pretrain_gain"] = round(gain, 4)
        sets[name] = entry
    return {"sets": sets}


def text_table(table: Mapping[str, Any]) -> str:
    """The table the bench prints: one row per set and model, macro-F1 mean +- std over seeds."""
    lines = ["| set | model | seeds | macro-F1 | accuracy | items/s |", "|---|---|---|---|---|---|"]
    for name, entry in table["sets"].items():
        for model in [m for m in entry if isinstance(entry[m], dict) and "runs" in entry[m]]:
            s = entry[model]
            f1 = f"{s['macro_f1_mean']:.3f} +- {s['macro_f1_std']:.3f}"
            acc = f"{s['accuracy_mean']:.3f}"
            lines.append(f"| {name} | {model} | {len(s['runs'])} | {f1} | {acc} | {s['items_per_s_mean']} |")
    return "\n".join(lines)
