"""The corpus contact sheet: one example face per class (rows) and domain (columns), read back from the
written files so it shows what is on disk."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from expr_common.data import affwild2 as layout  # noqa: E402
from expr_common.labels import CLASS_NAMES, NEUTRAL, UNLABELLED  # noqa: E402
from expr_common.media import read_video  # noqa: E402

THUMB = 96


def _ckplus(root: Path, records: list[dict], label: int) -> np.ndarray | None:
    for r in records:
        # CK+ has no neutral sequences: its first frames are the neutral examples
        if r["label"] == label or (label == NEUTRAL and r["label"] != UNLABELLED):
            path = (
                r["peak"]
                if label != NEUTRAL
                else r["peak"].replace(f"_{r['frames']:08d}.png", "_00000001.png")
            )
            image = Image.open(root / "ckplus" / path).convert("RGB")
            w, h = image.size
            side = int(h * 0.7)
            box = ((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2)
            return np.asarray(image.crop(box).resize((THUMB, THUMB)))
    return None


def _afew(root: Path, records: list[dict], label: int) -> np.ndarray | None:
    for r in records:
        if r["label"] == label:
            frame = read_video(root / "afew" / r["path"], [r["frames"] // 2])[0]
            return np.asarray(
                Image.fromarray(frame).resize((THUMB * frame.shape[1] // frame.shape[0], THUMB))
            )
    return None


def _affwild2(root: Path, records: list[dict], label: int) -> np.ndarray | None:
    best = None  # the middle of the longest run of this label: the clearest example
    for r in records:
        labels = r["labels"]
        i = 0
        while i < len(labels):
            j = i
            while j < len(labels) and labels[j] == labels[i]:
                j += 1
            if labels[i] == label and (best is None or j - i > best[0]):
                mid = (i + j) // 2
                if mid + 1 not in r["missing"]:
                    best = (j - i, r["track"], mid + 1)
            i = j
    if best is None:
        return None
    path = root / "affwild2" / layout.CROPS_DIR / best[1] / f"{best[2]:05d}.jpg"
    return np.asarray(Image.open(path).convert("RGB").resize((THUMB, THUMB)))


def contact_sheet(root: Path, records: dict[str, list[dict]], out: Path) -> Path:
    columns = (("CK+", _ckplus, "ckplus"), ("AFEW", _afew, "afew"), ("Aff-Wild2", _affwild2, "affwild2"))
    fig, axes = plt.subplots(
        len(CLASS_NAMES), len(columns), figsize=(2.2 * len(columns), 1.6 * len(CLASS_NAMES))
    )
    for row, name in enumerate(CLASS_NAMES):
        for col, (title, pick, key) in enumerate(columns):
            ax = axes[row, col]
            image = pick(root, records[key], row)
            if image is None:
                ax.text(0.5, 0.5, "none", ha="center", va="center", fontsize=8, color="gray")
            else:
                ax.imshow(image)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=10)
            if col == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.suptitle("Synthetic corpus: one example per class and domain", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=80, metadata={"Software": None})
    plt.close(fig)
    return out
