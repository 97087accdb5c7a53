"""From window predictions to the ABAW per-frame metric: inference over a cached split, frame-level
aggregation of overlapping windows, the (m, n) fusion grid, temporal smoothing, and the figures.

A window's probabilities are spread over every frame of its span; a frame covered by several windows
gets their mean. A sample without frames (clip-labelled audio) is scored as one row, its windows'
mean, labelled with its clip label; a single image is a one-frame sample, so also one row. Smoothing only
ever acts within a sample that has a time axis, and is left out when no sample has one.

Per-branch probabilities are aggregated separately, so the fusion grid can re-fuse at
frame level: fusion is linear and a reference's modality masks are the same in all its windows, so
fusing then averaging equals averaging then fusing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from expr_common.atomic import atomic_write
from expr_common.data.dataset import CachedClips, normalize_video
from expr_common.labels import NUM_CLASSES
from expr_common.metrics import evaluate_predictions, macro_f1, smooth_probabilities
from recognizer.config import FUSION_RANGE
from recognizer.fusion import fusion_grid, proportional_fusion


@dataclass
class WindowPredictions:
    index: np.ndarray  # positions in the dataset, [N]
    prob: np.ndarray  # fused with the model's (m, n), [N, C]
    prob_a: np.ndarray | None  # None for a video-only model
    prob_v: np.ndarray | None  # None for an audio-only model
    has_audio: np.ndarray
    has_video: np.ndarray


@torch.no_grad()
def predict_windows(model: torch.nn.Module, loader, accelerator) -> WindowPredictions:
    """Every window of ``loader`` through ``model``, gathered across processes (each sample once).

    ``gather_for_metrics`` drops the samples that a prepared loader repeats to give every process equally
    many batches; overlapping windows would hide a repeat in the frame averages, so it is checked here."""
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {}
    for batch in loader:
        video = normalize_video(batch["video"])
        with accelerator.autocast():
            out = model(video, batch["audio"], batch["has_video"], batch["has_audio"])
        tensors = {
            "index": batch["index"],
            "has_audio": batch["has_audio"],
            "has_video": batch["has_video"],
            **{k: out[k].float() for k in ("prob", "prob_a", "prob_v") if k in out},
        }
        gathered = accelerator.gather_for_metrics(tensors)
        for key, value in gathered.items():
            parts.setdefault(key, []).append(value.cpu())
    if not parts:
        raise ValueError("no windows to evaluate: the split is empty")
    arrays = {k: torch.cat(v).numpy() for k, v in parts.items()}
    expected, distinct = len(loader.dataset), len(np.unique(arrays["index"]))
    if not len(arrays["index"]) == distinct == expected:
        raise RuntimeError(
            f"gathered {len(arrays['index'])} window predictions ({distinct} distinct) for {expected} windows"
        )
    order = np.argsort(arrays["index"], kind="stable")
    arrays = {k: v[order] for k, v in arrays.items()}
    return WindowPredictions(
        index=arrays["index"],
        prob=arrays["prob"],
        prob_a=arrays.get("prob_a"),
        prob_v=arrays.get("prob_v"),
        has_audio=arrays["has_audio"].astype(bool),
        has_video=arrays["has_video"].astype(bool),
    )


@dataclass
class FrameTable:
    """One row per scored frame, references in order and frames in time order within each."""

    ref_id: np.ndarray  # [F] str
    frame: np.ndarray  # [F] 0-based frame number in its reference
    label: np.ndarray  # [F] ABAW label, -1 = not scored
    prob: np.ndarray  # [F, C] fused with the model's (m, n)
    prob_a: np.ndarray | None
    prob_v: np.ndarray | None
    has_audio: np.ndarray
    has_video: np.ndarray
    per_sample: np.ndarray  # [F] bool: the row stands for a whole sample without frames (audio only)

    @property
    def has_time_axis(self) -> bool:
        """Whether some sample has more than one scored row (smoothing can act on it)."""
        return bool(len(self.ref_id) > 1 and (self.ref_id[1:] == self.ref_id[:-1]).any())

    def fused(self, m: int, n: int) -> np.ndarray:
        if self.prob_a is None or self.prob_v is None:
            return self.prob
        fused = proportional_fusion(
            torch.from_numpy(self.prob_a),
            torch.from_numpy(self.prob_v),
            m,
            n,
            torch.from_numpy(self.has_audio),
            torch.from_numpy(self.has_video),
        )
        return fused.numpy()

    def smoothed(self, prob: np.ndarray, window: int) -> np.ndarray:
        """Temporal smoothing within each reference (never across two videos)."""
        if window <= 1:
            return prob
        out = np.empty_like(prob)
        bounds = np.flatnonzero(np.r_[True, self.ref_id[1:] != self.ref_id[:-1], True])
        for a, b in zip(bounds[:-1], bounds[1:]):
            out[a:b] = smooth_probabilities(prob[a:b], window)
        return out


def frames_from_windows(dataset: CachedClips, preds: WindowPredictions) -> FrameTable:
    """Spread each window's probabilities over the frames of its span and average overlaps."""
    keys = [k for k in ("prob", "prob_a", "prob_v") if getattr(preds, k) is not None]
    refs: dict[str, dict[str, Any]] = {}
    for row, position in enumerate(preds.index):
        entry = dataset.entries[int(position)]  # the index says where; only the span labels are read
        start, stop = (int(x) for x in entry["span"])
        acc = refs.setdefault(entry["ref_id"], {"n": 0, "windows": [], "per_sample": stop <= start})
        if acc["per_sample"]:  # no frames (audio only): the sample is one row, its clip label
            acc["n"] = 1
            acc["windows"].append((row, 0, 1, np.array([entry["label"]])))
            continue
        acc["n"] = max(acc["n"], stop)
        acc["windows"].append((row, start, stop, dataset.span_labels(int(position)).numpy()))
    names = ("ref_id", "frame", "label", "has_audio", "has_video", "per_sample", *keys)
    columns: dict[str, list] = {k: [] for k in names}
    for ref_id in sorted(refs):
        acc = refs[ref_id]
        n = acc["n"]
        sums = {k: np.zeros((n, NUM_CLASSES)) for k in keys}
        count = np.zeros(n)
        label = np.full(n, -1, dtype=np.int64)
        masks = np.zeros((n, 2), dtype=bool)
        for row, start, stop, span_labels in acc["windows"]:
            for k in keys:
                sums[k][start:stop] += getattr(preds, k)[row]
            count[start:stop] += 1
            label[start:stop] = np.where(span_labels >= 0, span_labels, label[start:stop])
            masks[start:stop] = (preds.has_audio[row], preds.has_video[row])
        covered = np.flatnonzero(count > 0)
        columns["ref_id"].append(np.full(len(covered), ref_id, dtype=object))
        columns["frame"].append(covered)
        columns["label"].append(label[covered])
        columns["has_audio"].append(masks[covered, 0])
        columns["has_video"].append(masks[covered, 1])
        columns["per_sample"].append(np.full(len(covered), acc["per_sample"]))
        for k in keys:
            columns[k].append(sums[k][covered] / count[covered, None])
    joined = {k: np.concatenate(v) if v else np.zeros(0) for k, v in columns.items()}
    return FrameTable(
        ref_id=joined["ref_id"],
        frame=joined["frame"].astype(np.int64),
        label=joined["label"].astype(np.int64),
        prob=joined["prob"],
        prob_a=joined.get("prob_a"),
        prob_v=joined.get("prob_v"),
        has_audio=joined["has_audio"].astype(bool),
        has_video=joined["has_video"].astype(bool),
        per_sample=joined["per_sample"].astype(bool),
    )


def score(table: FrameTable, m: int | None = None, n: int | None = None, window: int = 1) -> dict[str, Any]:
    """The metrics.json block for the frames, fused with (m, n) (default: the model's) and smoothed."""
    prob = table.prob if m is None or n is None else table.fused(m, n)
    pred = table.smoothed(prob, window).argmax(axis=1)
    return evaluate_predictions(table.label, pred)


def select_fusion_and_smoothing(table: FrameTable, windows: tuple[int, ...]) -> dict[str, Any]:
    """The paper's grid search over (m, n) in 1..5 on validation macro-F1, then the smoothing window."""
    selection: dict[str, Any] = {"m": None, "n": None, "grid": None}
    prob = table.prob
    if table.prob_a is not None and table.prob_v is not None:
        grid, (m, n) = fusion_grid(
            table.prob_a, table.prob_v, table.has_audio, table.has_video, table.label, macro_f1
        )
        selection.update(m=m, n=n, grid=grid.round(6).tolist())
        prob = table.fused(m, n)
    if not table.has_time_axis:  # clip-labelled audio, single images: nothing to smooth over
        selection.update(window=1, smoothing={"1": round(macro_f1(table.label, prob.argmax(1)), 6)})
        selection["smoothing_skipped"] = "no sample has a time axis (audio clips or single images)"
        return selection
    smoothing = {int(w): macro_f1(table.label, table.smoothed(prob, int(w)).argmax(1)) for w in windows}
    best = max(smoothing, key=lambda w: (smoothing[w], -w))  # ties: the smaller window
    selection.update(window=best, smoothing={str(k): round(v, 6) for k, v in smoothing.items()})
    return selection


def plot_grid(grid: list[list[float]], path: str | Path) -> Path:
    """Heatmap of macro-F1 over the (m, n) grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(grid)
    fig, ax = plt.subplots(figsize=(4.6, 4))
    image = ax.imshow(values, cmap="viridis", origin="lower")
    ticks = list(FUSION_RANGE)
    ax.set_xticks(range(len(ticks)), ticks)
    ax.set_yticks(range(len(ticks)), ticks)
    ax.set_xlabel("n (visual weight)")
    ax.set_ylabel("m (audio weight)")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, f"{values[i, j]:.3f}", ha="center", va="center", fontsize=7, color="white")
    ax.set_title("validation macro-F1 by (m, n)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_predictions(table: FrameTable, pred: np.ndarray, path: str | Path) -> Path:
    """``predictions.csv``: ``sample_id,frame,label,pred``, one row per scored frame (frames 1-based, as
    Aff-Wild2 numbers its crops; empty for a sample scored as a whole, which has no frames)."""
    with atomic_write(path) as handle:
        handle.write("sample_id,frame,label,pred\n")
        rows = zip(table.ref_id, table.frame, table.label, pred, table.per_sample)
        for ref_id, frame, label, p, whole in rows:
            if label >= 0:
                handle.write(f"{ref_id},{'' if whole else frame + 1},{label},{p}\n")
    return Path(path)
