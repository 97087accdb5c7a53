"""Which frames a sample is made of, and how one reference becomes its samples.

The first half is pure index arithmetic (windows over a clip, K frame indices at equal time intervals,
stand-ins for missing frames), unit-tested on plain numbers. :func:`process_ref` then decodes one
reference into per-window samples (face crops + log-mel + labels), counting what it has to skip.
Frame indices are 0-based positions in the reference's frame sequence (Aff-Wild2 ``00001.jpg`` is 0).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from expr_common.data.audio import load_wave, silent_log_mel, window_log_mel
from expr_common.data.config import PreprocessConfig
from expr_common.data.faces import FaceStats, detectors_for, face_crops, read_image
from expr_common.data.refs import SampleRef
from expr_common.labels import UNLABELLED
from expr_common.media import MediaError, probe, read_video, short_of_header


@dataclass(frozen=True)
class Window:
    """One sample's frames: the span ``[start, stop)`` and the K indices sampled inside it."""

    start: int
    stop: int
    indices: tuple[int, ...]  # K frame indices (repeats allowed when the span is shorter than K)
    frame_labels: tuple[int, ...]  # label of each sampled frame (-1 = unannotated)
    span_labels: tuple[int, ...]  # label of every frame in [start, stop): per-frame scoring needs them
    label: int  # the sample's class: clip label, or the majority of the span's annotated frames


def sample_indices(start: int, stop: int, k: int) -> list[int]:
    """K indices at equal time intervals in ``[start, stop)``: the centres of K equal segments (as in
    TSN), so the first and last segments are covered alike; a span shorter than K repeats frames."""
    if k < 1:
        raise ValueError(f"K must be >= 1, got {k}")
    if stop <= start:
        raise ValueError(f"empty frame span [{start}, {stop})")
    length = stop - start
    return [start + min(length - 1, int((j + 0.5) * length / k)) for j in range(k)]


def window_spans(
    n_frames: int, fps: float, window_seconds: float, stride_seconds: float
) -> list[tuple[int, int]]:
    """``[start, stop)`` spans of ``window_seconds`` every ``stride_seconds`` over ``n_frames`` frames.
    The last window is aligned to the clip's end so no tail frame is left out; a clip shorter than one
    window is one span."""
    if n_frames < 1:
        return []
    length = max(1, int(round(window_seconds * fps)))
    stride = max(1, int(round(stride_seconds * fps)))
    if n_frames <= length:
        return [(0, n_frames)]
    starts = list(range(0, n_frames - length + 1, stride))
    if starts[-1] + length < n_frames:
        starts.append(n_frames - length)
    return [(s, s + length) for s in starts]


def majority_label(span_labels: Sequence[int]) -> int:
    """The most frequent annotated label of a span; a tie goes to the tied class whose frame is nearest
    the span's centre (the frames the K samples weight most); -1 when nothing is annotated."""
    counts = Counter(label for label in span_labels if label != UNLABELLED)
    if not counts:
        return UNLABELLED
    top = max(counts.values())
    tied = {label for label, count in counts.items() if count == top}
    if len(tied) == 1:
        return tied.pop()
    centre = (len(span_labels) - 1) / 2
    order = sorted(range(len(span_labels)), key=lambda i: (abs(i - centre), i))
    return next(span_labels[i] for i in order if span_labels[i] in tied)


def plan_windows(
    n_frames: int,
    k: int,
    *,
    fps: float | None,
    label: int = UNLABELLED,
    frame_labels: Sequence[int] | None = None,
    window_seconds: float = 2.0,
    stride_seconds: float = 1.0,
) -> list[Window]:
    """The samples of one clip. Per-frame-annotated clips (``frame_labels`` given, Aff-Wild2) are cut into
    windows with a stride; clip-labelled ones (AFEW, CK+, manifest) are one window over all frames."""
    if frame_labels is not None and len(frame_labels) != n_frames:
        raise ValueError(f"{len(frame_labels)} frame labels for {n_frames} frames")
    if frame_labels is None:
        spans = [(0, n_frames)] if n_frames > 0 else []
        labels: Sequence[int] = [label] * n_frames
    else:
        spans = window_spans(n_frames, fps or 30.0, window_seconds, stride_seconds)  # 30: Aff-Wild2's rate
        labels = frame_labels
    windows = []
    for start, stop in spans:
        indices = sample_indices(start, stop, k)
        span = tuple(labels[start:stop])
        clip_label = label if frame_labels is None else majority_label(span)
        windows.append(
            Window(start, stop, tuple(indices), tuple(labels[i] for i in indices), span, clip_label)
        )
    return windows


def nearest_available(index: int, start: int, stop: int, available: Callable[[int], bool]) -> int | None:
    """The frame nearest ``index`` within ``[start, stop)`` that ``available`` accepts (earlier first on a
    tie), or None. Stands in for sampled frames without an image (no crop, unreadable file)."""
    for distance in range(max(index - start, stop - 1 - index) + 1):
        for candidate in (index - distance, index + distance):
            if start <= candidate < stop and available(candidate):
                return candidate
    return None


def resolve_window(window: Window, available: Callable[[int], bool]) -> Window | None:
    """``window`` with every sampled frame that is not ``available`` replaced by its nearest available
    neighbour in the span (its label follows it); None when the span has no available frame."""
    resolved = []
    for index in window.indices:
        found = nearest_available(index, window.start, window.stop, available)
        if found is None:
            return None
        resolved.append(found)
    if tuple(resolved) == window.indices:
        return window
    frame_labels = tuple(window.span_labels[i - window.start] for i in resolved)
    return Window(window.start, window.stop, tuple(resolved), frame_labels, window.span_labels, window.label)


@dataclass
class RefResult:
    samples: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    faces: FaceStats = field(default_factory=FaceStats)
    frames_replaced: int = 0  # sampled frames without an image, replaced by their nearest neighbour


def _fps_of(path: Path | None) -> float | None:
    try:
        return probe(path).fps if path is not None else None
    except MediaError:
        return None


def _plan(ref: SampleRef, n_frames: int, fps: float | None, cfg: PreprocessConfig) -> list[Window]:
    return plan_windows(
        n_frames,
        cfg.frames,
        fps=fps,
        label=ref.label,
        frame_labels=ref.frame_labels,
        window_seconds=cfg.window_seconds,
        stride_seconds=cfg.stride_seconds,
    )


def _decode_video(
    ref: SampleRef, cfg: PreprocessConfig, out: RefResult
) -> tuple[dict[int, np.ndarray], int, float | None]:
    """Only the frames the windows sample (a long video never sits in memory whole), planned from the
    header's frame count; a header that is off (or absent) falls back to decoding everything. A video
    that decodes clearly fewer frames than announced is truncated: skipped, like one that cannot be
    opened. Returns (frames by index, frame count, fps); the count is 0 when skipped."""
    try:
        info = probe(ref.video)
        announced, fps = info.frames or 0, ref.fps or info.fps
        if announced:
            wanted = sorted({i for w in _plan(ref, announced, fps, cfg) for i in w.indices})
            with contextlib.suppress(MediaError):  # e.g. the header counts one frame too many
                return dict(zip(wanted, read_video(ref.video, wanted))), announced, fps
        frames = read_video(ref.video)
    except MediaError as exc:
        out.skipped["unreadable video"] += 1
        out.warnings.append(f"{ref.sample_id}: {exc}; skipped")
        return {}, 0, None
    if short_of_header(announced, len(frames)):
        out.skipped["truncated video"] += 1
        out.warnings.append(f"{ref.video}: decodes {len(frames)} of {announced} frames; skipped")
        return {}, 0, None
    return dict(enumerate(frames)), len(frames), fps


def process_ref(ref: SampleRef, cfg: PreprocessConfig, detect: bool) -> RefResult:
    """All samples of one reference (one per window), or the reasons there are none."""
    out = RefResult()
    per_frame = ref.frame_labels is not None
    if not per_frame and ref.label == UNLABELLED and ref.split != "test":
        out.skipped["unlabelled clip"] += 1
        return out
    fps, n_frames, images = ref.fps, 0, {}
    if ref.video is not None:
        images, n_frames, fps = _decode_video(ref, cfg, out)
        if not n_frames:
            return out
    elif ref.frame_paths is not None:
        n_frames = len(ref.frame_paths)
        if fps is None and ref.audio is not None:
            fps = _fps_of(ref.audio)  # frames extracted from the file that carries the sound
    wave, problem = load_wave(ref.audio, cfg.sample_rate)
    if n_frames == 0 and wave is None:  # an audio-only sample whose sound is unusable: nothing is left
        out.skipped[f"{problem or 'no audio'} and no frames"] += 1
        where = f" in {ref.audio}" if ref.audio is not None else ""
        out.warnings.append(f"{ref.sample_id}: {problem or 'no audio'}{where} and no frames; sample skipped")
        return out
    if problem:
        out.skipped[f"{problem} (has_audio=False)"] += 1
        out.warnings.append(f"{ref.sample_id}: {problem} in {ref.audio}; kept with has_audio=False")

    sizes: set[tuple[int, int]] = set()  # of the images read: one clip (or crop track) has one size

    def frame(i: int) -> np.ndarray | None:
        if i not in images and ref.frame_paths is not None:
            path = ref.frame_paths[i]
            images[i] = None if path is None else read_image(path)
            if path is not None and images[i] is None:
                out.skipped["unreadable image (frame)"] += 1
                out.warnings.append(f"{ref.sample_id}: cannot read image {path}; a neighbour stands in")
            elif images[i] is not None:
                sizes.add(images[i].shape[:2])
        return images.get(i)

    detectors = detectors_for(cfg) if detect else ()
    for planned in _plan(ref, n_frames, fps, cfg):
        if per_frame and planned.label == UNLABELLED and ref.split != "test":
            out.skipped["window without annotated frame"] += 1
            continue
        if ref.video is None:  # windows move forward: free the images behind this one
            for old in [i for i in images if i < planned.start]:
                del images[old]
        window = resolve_window(planned, lambda i: frame(i) is not None)
        if window is None:
            out.skipped["window without readable frame" if per_frame else "clip without readable frame"] += 1
            continue
        out.frames_replaced += sum(a != b for a, b in zip(window.indices, planned.indices))
        crops, stats = face_crops(
            [frame(i) for i in window.indices],
            window.indices,
            size=cfg.image_size,
            detect=detect,
            margin=cfg.face_margin,
            detectors=detectors,
        )
        out.faces.add(stats)
        mel = None if wave is None else window_log_mel(wave, cfg, (window.start, window.stop), fps)
        out.samples.append(_sample(ref, window, crops, mel, cfg, f"@{window.start}" if per_frame else ""))
    if len(sizes) > 1:  # a damaged crop (a 10x10 thumbnail among 112x112 ones): kept, resized, counted
        out.skipped["clip with frames of mixed sizes (resized)"] += 1
        shown = ", ".join(f"{w}x{h}" for h, w in sorted(sizes))
        out.warnings.append(
            f"{ref.sample_id}: frames of {len(sizes)} sizes ({shown}) in one clip; all resized"
        )
    if n_frames == 0:  # audio only: one sample over the middle of the recording, no pixels
        k = cfg.frames
        blank = np.zeros((k, 3, cfg.image_size, cfg.image_size), np.uint8)
        window = Window(0, 0, (0,) * k, (ref.label,) * k, (), ref.label)
        out.samples.append(_sample(ref, window, blank, window_log_mel(wave, cfg, None, None), cfg, ""))
    return out


def _sample(
    ref: SampleRef,
    window: Window,
    crops: np.ndarray,
    mel: torch.Tensor | None,
    cfg: PreprocessConfig,
    suffix: str,
) -> dict[str, Any]:
    return {
        "video": crops,
        "audio": (silent_log_mel(cfg) if mel is None else mel).to(torch.float16),
        "label": int(window.label),
        "has_audio": mel is not None,
        "has_video": ref.has_video,
        "frame_labels": list(window.frame_labels),
        "frame_index": list(window.indices),
        "span": [window.start, window.stop],
        "span_labels": list(window.span_labels),
        "meta": {
            "id": ref.sample_id + suffix,
            "ref_id": ref.sample_id,
            "dataset": ref.dataset,
            "domain": ref.domain,
            "split": ref.split,
            "subject": ref.subject,
        },
    }
