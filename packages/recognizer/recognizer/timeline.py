"""Pictures of a recording's predictions (recognizer/predict_video.py): ``timeline.png`` (class
probabilities over time above a band of the predicted label, grey where there is none) and the annotated
video (the face box and the label with its probability drawn on every frame, the original sound kept)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from expr_common.atomic import atomic_write
from expr_common.data.faces import read_image
from expr_common.labels import CLASS_NAMES, NUM_CLASSES
from expr_common.logs import progress
from expr_common.media import MediaError, VideoWriter, iter_video

NO_LABEL = (0.82, 0.82, 0.82)


def _colours() -> np.ndarray:
    import matplotlib

    return np.asarray(matplotlib.colormaps["tab10"].colors[:NUM_CLASSES])


def plot_timeline(pred, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    colours = _colours()
    times = np.arange(len(pred.prob)) / pred.recording.fps
    fig, (top, band) = plt.subplots(2, 1, figsize=(10, 3.6), sharex=True, height_ratios=(4, 0.6))
    for c, name in enumerate(CLASS_NAMES):
        top.plot(times, pred.prob[:, c], color=colours[c], lw=1.4, label=name)
    top.set_ylim(0, 1)
    top.set_ylabel("probability")
    top.legend(ncol=4, fontsize=7, loc="upper right", frameon=False)
    top.set_title(f"{pred.recording.path.name}: per-frame expression")
    strip = np.array([colours[label] if label >= 0 else NO_LABEL for label in pred.label])
    extent = (times[0], times[-1] + 1 / pred.recording.fps, 0, 1)
    band.imshow(strip[None], aspect="auto", extent=extent, interpolation="nearest")
    band.set_yticks([])
    band.set_xlabel("time (s)")
    band.set_ylabel("label", rotation=0, ha="right", va="center")
    fig.tight_layout()
    try:
        with atomic_write(path, "wb") as handle:
            fig.savefig(handle, dpi=100, format="png")
    finally:
        plt.close(fig)
    return path


def annotate(image: np.ndarray, box, label: int, prob: np.ndarray | None, has_face: bool) -> np.ndarray:
    """One RGB frame with the face box and ``label prob`` drawn (``no face`` where the track has none)."""
    out = np.ascontiguousarray(image).copy()
    scale = max(0.35, out.shape[0] / 480)
    colour = tuple(int(255 * v) for v in (_colours()[label] if label >= 0 else NO_LABEL))
    thickness = max(1, int(round(2 * scale)))
    if box is not None and has_face:
        x, y, w, h = box[:4]
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thickness)
    text = f"{CLASS_NAMES[label]} {prob[label]:.2f}" if label >= 0 and prob is not None else "no label"
    if not has_face:
        text += " (no face)"
    origin = (int(8 * scale), int(24 * scale))
    cv2.putText(
        out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 0, 0), thickness + 2, cv2.LINE_AA
    )
    cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, colour, thickness, cv2.LINE_AA)
    return out


def render(pred, folder: Path) -> Path:
    """``annotated.mp4`` (``annotated.png`` for an image) in ``folder``."""
    rec, labels = pred.recording, pred.label
    if rec.kind == "image":
        image = read_image(str(rec.path))
        drawn = annotate(image, pred.boxes[0], labels[0], pred.prob[0], bool(pred.has_face[0]))
        path = folder / "annotated.png"
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        if not ok:
            raise MediaError(f"{path}: cannot encode the annotated image")
        with atomic_write(path, "wb") as handle:
            handle.write(encoded.tobytes())
        return path
    path = folder / "annotated.mp4"
    with VideoWriter(path, rec.fps, audio_from=rec.path if rec.has_audio else None) as writer:
        frames = progress(
            iter_video(rec.path), total=len(labels), desc=f"render {rec.path.name}", unit="frame"
        )
        for i, image in enumerate(frames):
            if i >= len(labels):
                break
            writer.write(annotate(image, pred.boxes[i], labels[i], pred.prob[i], bool(pred.has_face[i])))
    return path
