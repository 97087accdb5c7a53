"""``recognizer predict --video PATH [PATH ...]``: a trained recognizer on recordings of one's own (videos,
folders of them, sound files, images), read with the preprocessing it was trained with
(:mod:`expr_common.data.recording`).

Per recording, in ``OUT/<name>/``: ``frames.csv`` (one row per decoded frame: ``frame`` 0-based, ``time_s``,
``label``, ``prob_<class>``..., ``has_face``, ``has_audio``), ``timeline.png`` and, with ``--render``,
``annotated.mp4`` (face box and label drawn, the original sound kept; ``annotated.png`` for an image).

Each window's probabilities are spread over the frames of its span and overlapping windows averaged, as
evaluation does, then smoothed with the checkpoint's window. A frame where the face track has no face takes
the windows' audio-only probabilities when there is sound, and otherwise no label (empty cells): frames
without a face are marked, never given a visual guess.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from expr_common.atomic import atomic_write
from expr_common.data.faces import Box
from expr_common.data.readers import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES
from expr_common.data.recording import (
    FaceTrack,
    Recording,
    RecordingWindow,
    open_recording,
    recording_windows,
)
from expr_common.errors import ExprError
from expr_common.labels import CLASS_NAMES, NUM_CLASSES
from expr_common.logs import get_logger, progress
from expr_common.media import MediaError
from expr_common.metrics import smooth_probabilities
from expr_common.subcommands import positive_int

log = get_logger("recognizer")
FRAMES_FILE, TIMELINE_FILE, RENDER_FILE = "frames.csv", "timeline.png", "annotated.mp4"
MEDIA_SUFFIXES = (*VIDEO_SUFFIXES, *AUDIO_SUFFIXES, *IMAGE_SUFFIXES)


class PredictError(ExprError, ValueError):
    pass


@dataclass
class FramePredictions:
    """Per decoded frame of one recording."""

    recording: Recording
    prob: np.ndarray  # [N, C], NaN where the frame has no label
    has_face: np.ndarray  # [N] bool
    has_audio: np.ndarray  # [N] bool: sound went into the frame's prediction
    boxes: list[Box | None]  # the face track
    windows: int
    seconds: float  # wall time of the reading and the model

    @property
    def labelled(self) -> np.ndarray:
        return ~np.isnan(self.prob[:, 0])

    @property
    def label(self) -> np.ndarray:  # -1 where unlabelled
        return np.where(self.labelled, np.nan_to_num(self.prob).argmax(axis=1), -1)


def spread_to_frames(
    windows: list[tuple[int, int, bool, bool]],
    out: dict[str, np.ndarray],
    has_face: np.ndarray,
    smoothing: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(prob ``[N, C]`` with NaN rows for unlabelled frames, has_audio ``[N]``) from the windows' spans and
    flags ``(start, stop, has_video, has_audio)`` (what the model used: a face it can see, sound it can
    hear) and outputs. A frame with a face averages the fused probabilities of the windows over it; one
    without a face averages their audio-only probabilities (windows with sound only). Fused, then averaged:
    unlike in a prepared split, one recording's windows may differ in their masks. Each run of labelled
    frames is then smoothed over ``smoothing`` frames."""
    total = len(has_face)
    sums, count = np.zeros((total, NUM_CLASSES)), np.zeros(total)
    audio = np.zeros(total, bool)
    for row, (start, stop, with_video, with_audio) in enumerate(windows):
        span = slice(start, stop)
        audio[span] |= with_audio
        if not (with_video or with_audio):  # no face and no sound: nothing to say about these frames
            continue
        face = has_face[span] if with_video else np.ones(stop - start, bool)  # an A-only window: all frames
        fused, sound = out["prob"][row], out["prob_a"][row]
        take = face | with_audio
        sums[span] += np.where(face[:, None], fused, sound) * take[:, None]
        count[span] += take
    prob = np.full((total, NUM_CLASSES), np.nan)
    labelled = count > 0
    prob[labelled] = sums[labelled] / count[labelled, None]
    if smoothing > 1:  # within each run of consecutive labelled frames, never across a gap
        edges = np.flatnonzero(np.diff(np.r_[False, labelled, False].astype(np.int8)))
        for start, stop in zip(edges[::2], edges[1::2]):
            prob[start:stop] = smooth_probabilities(prob[start:stop], smoothing)
    return prob, audio


def predict_recording(predictor, path: str | Path, *, faces: str = "detect", batch_size: int = 16,
                      detect_every: int = 1) -> FramePredictions:  # fmt: skip
    """One recording through ``predictor`` (recognizer/predictors.py), window batch by window batch."""
    started = time.perf_counter()
    rec = open_recording(path)
    cfg = predictor.preprocess
    if rec.kind == "audio" and "a" not in predictor.modalities:
        raise PredictError(
            f"{path}: a sound file, but the model has no audio branch ({predictor.modalities})"
        )
    if rec.kind == "image" and "v" not in predictor.modalities:
        raise PredictError(f"{path}: an image, but the model has no visual branch ({predictor.modalities})")
    detect = faces == "detect" and cfg.face_detector != "none"
    track = FaceTrack()
    spans: list[tuple[int, int, bool, bool]] = []
    outputs: list[dict[str, np.ndarray]] = []
    pending: list[RecordingWindow] = []

    def run(batch: list[RecordingWindow]) -> None:
        outputs.append(predictor(
            np.stack([w.video for w in batch]), np.stack([w.audio.numpy() for w in batch]),
            np.array([w.has_video for w in batch]), np.array([w.has_audio for w in batch]),
        ))  # fmt: skip
        sees, hears = "v" in predictor.modalities, "a" in predictor.modalities  # a branch the model has
        spans.extend((w.start, w.stop, w.has_video and sees, w.has_audio and hears) for w in batch)
        batch.clear()

    with progress(total=rec.frames or None, desc=Path(path).name, unit="frame") as bar:
        for window in recording_windows(rec, cfg, detect=detect, track=track, detect_every=detect_every):
            pending.append(window)
            if len(pending) == batch_size:
                run(pending)
            bar.update(max(0, window.stop - bar.n))
        if pending:
            run(pending)
        bar.total = track.frames  # the decode has the last word over the header's count
        bar.refresh()
    out = {k: np.concatenate([o[k] for o in outputs]) for k in ("prob", "prob_a")}
    has_face = track.has_face if detect else np.ones(track.frames, bool)
    if rec.kind == "audio":
        has_face = np.zeros(track.frames, bool)
    prob, has_audio = spread_to_frames(spans, out, has_face, predictor.window)
    boxes = track.boxes if detect else [None] * track.frames
    return FramePredictions(rec, prob, has_face, has_audio, boxes, len(spans), time.perf_counter() - started)


def write_frames_csv(pred: FramePredictions, path: Path) -> Path:
    fps = pred.recording.fps
    with atomic_write(path) as handle:
        handle.write(
            "frame,time_s,label," + ",".join(f"prob_{c}" for c in CLASS_NAMES) + ",has_face,has_audio\n"
        )
        for i, (row, label) in enumerate(zip(pred.prob, pred.label)):
            name = CLASS_NAMES[label] if label >= 0 else ""
            cells = ",".join(f"{p:.6f}" for p in row) if label >= 0 else "," * (NUM_CLASSES - 1)
            handle.write(
                f"{i},{i / fps:.4f},{name},{cells},{int(pred.has_face[i])},{int(pred.has_audio[i])}\n"
            )
    return path


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; folders give their media files (sorted, not recursive). Names must be distinct."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix.lower() in MEDIA_SUFFIXES and p.is_file())
            if not inside:
                raise PredictError(f"{path}: a folder without video, sound or image files")
            found.extend(inside)
        else:
            found.append(path)
    stems: dict[str, Path] = {}
    for path in found:
        if path.stem in stems:
            raise PredictError(
                f"{path} and {stems[path.stem]} would write the same OUT/{path.stem}/: rename one"
            )
        stems[path.stem] = path
    return found


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", nargs="+", type=Path, default=None, metavar="PATH",
                        help="videos, folders of them, sound files or images")  # fmt: skip
    parser.add_argument("--onnx", type=Path, default=None, help="run an exported model on onnxruntime")
    parser.add_argument("--faces", choices=("detect", "aligned"), default="detect",
                        help="aligned: the frames are face crops already (no detection)")  # fmt: skip
    parser.add_argument("--render", action="store_true", help="also write annotated.mp4 (the face and label)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace earlier predictions (--video folders, a submission file)")  # fmt: skip
    parser.add_argument("--detect-every", type=positive_int, default=1,
                        help="detect faces on every n-th frame (and every sampled one)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from recognizer.predictors import OnnxPredictor, TorchPredictor
    from recognizer.timeline import plot_timeline, render

    if (args.checkpoint is None) == (args.onnx is None):
        raise PredictError("give one of --checkpoint and --onnx")
    inputs = expand_inputs(args.video)
    targets = {p: args.out / p.stem for p in inputs}
    taken = [str(t) for t in targets.values() if (t / FRAMES_FILE).exists()]
    if taken and not args.overwrite:
        raise PredictError(f"{', '.join(taken)} already hold predictions; pass --overwrite to replace them")
    predictor = OnnxPredictor(args.onnx) if args.onnx else TorchPredictor(args.checkpoint, args.data)
    failed = []
    for path, target in targets.items():
        try:
            pred = predict_recording(predictor, path, faces=args.faces, batch_size=args.batch_size,
                                     detect_every=args.detect_every)  # fmt: skip
            target.mkdir(parents=True, exist_ok=True)
            write_frames_csv(pred, target / FRAMES_FILE)
            plot_timeline(pred, target / TIMELINE_FILE)
            if args.render and pred.recording.kind != "audio":
                render(pred, target)
        except (MediaError, PredictError) as exc:  # one bad file of many: one line, the others go on
            print(f"recognizer predict: error: {exc}", file=sys.stderr)
            failed.append(path)
            continue
        frames = len(pred.prob)
        print(
            f"{path}: {frames} frames ({int(pred.has_face.sum())} with a face, {int(pred.labelled.sum())} "
            f"labelled), {pred.windows} windows, {frames / pred.seconds:.1f} frames/s -> {target}"
        )
    if failed:
        raise PredictError(f"{len(failed)} of {len(inputs)} recordings could not be read: "
                           + ", ".join(map(str, failed)))  # fmt: skip
    return 0
