"""K-frame sampling, windowing with a stride, per-frame label maps, and stand-ins for missing frames."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from expr_common.data.config import PreprocessConfig
from expr_common.data.frames import (
    majority_label,
    nearest_available,
    plan_windows,
    process_ref,
    resolve_window,
    sample_indices,
    window_spans,
)
from expr_common.data.refs import SampleRef


def test_k_indices_are_equally_spaced_segment_centres():
    assert sample_indices(0, 16, 4) == [2, 6, 10, 14]
    assert sample_indices(10, 26, 4) == [12, 16, 20, 24]  # offset windows keep the spacing
    gaps = np.diff(sample_indices(0, 300, 8))
    assert gaps.min() >= 37 and gaps.max() <= 38  # 300 / 8 = 37.5


def test_k_equal_one_and_one_frame_clips():
    assert sample_indices(0, 9, 1) == [4]  # K=1: the middle frame
    assert sample_indices(0, 1, 8) == [0] * 8  # a one-frame clip repeats its frame
    assert sample_indices(0, 3, 8) == [0, 0, 0, 1, 1, 2, 2, 2]  # fewer frames than K: repeats, in order
    with pytest.raises(ValueError):
        sample_indices(0, 0, 4)
    with pytest.raises(ValueError):
        sample_indices(0, 5, 0)


def test_windows_cover_the_clip_with_a_stride_and_an_end_aligned_last_window():
    # 10 fps, 2 s windows every 1 s over 45 frames
    assert window_spans(45, 10.0, 2.0, 1.0) == [(0, 20), (10, 30), (20, 40), (25, 45)]
    assert window_spans(40, 10.0, 2.0, 1.0) == [(0, 20), (10, 30), (20, 40)]  # no duplicate tail window
    assert window_spans(12, 10.0, 2.0, 1.0) == [(0, 12)]  # shorter than a window: one span
    assert window_spans(0, 10.0, 2.0, 1.0) == []
    covered = {i for a, b in window_spans(1234, 30.0, 2.0, 1.5) for i in range(a, b)}
    assert covered == set(range(1234))


def test_per_frame_label_maps_are_kept_per_window():
    labels = [0] * 12 + [3] * 8 + [-1] * 10 + [4] * 10  # 40 frames at 10 fps
    windows = plan_windows(40, 4, fps=10.0, frame_labels=labels, window_seconds=2.0, stride_seconds=1.0)
    assert [(w.start, w.stop) for w in windows] == [(0, 20), (10, 30), (20, 40)]
    for w in windows:
        assert w.span_labels == tuple(labels[w.start : w.stop])  # every frame of the window, for scoring
        assert w.frame_labels == tuple(labels[i] for i in w.indices)
        assert len(w.indices) == 4 and all(w.start <= i < w.stop for i in w.indices)
    assert windows[0].label == 0  # 12 Neutral vs 8 Fear
    assert windows[1].label == 3  # 2 Neutral, 8 Fear, 10 unannotated: the annotated majority
    assert windows[2].label == 4


def test_clip_labels_are_one_window_over_all_frames():
    (window,) = plan_windows(7, 4, fps=None, label=5)
    assert (window.start, window.stop, window.label) == (0, 7, 5)
    assert window.frame_labels == (5, 5, 5, 5) and window.span_labels == (5,) * 7


def test_majority_tie_goes_to_the_class_nearest_the_centre():
    assert majority_label([1, 1, 2, 2, -1]) == 2  # centre index 2 holds a 2
    assert majority_label([2, 2, 1, 1]) in (1, 2)
    assert majority_label([2, 1, 1, 2, 2, 1]) == 1  # centre 2.5: index 2 (1) before index 3 (2)
    assert majority_label([-1, -1]) == -1


def test_missing_frames_are_replaced_by_the_nearest_available_one():
    available = {3, 9}.__contains__
    assert nearest_available(5, 0, 10, available) == 3  # searched outwards: 4, 6, then 3
    assert nearest_available(8, 0, 10, available) == 9
    assert nearest_available(6, 0, 10, {3, 9}.__contains__) == 3  # tie 3 vs 9: earlier first
    assert nearest_available(5, 4, 9, available) is None  # only inside the window
    (window,) = plan_windows(8, 4, fps=None, label=2)  # indices 1, 3, 5, 7
    resolved = resolve_window(window, lambda i: i not in (3, 7))
    assert resolved.indices == (1, 2, 5, 6)
    assert resolve_window(window, lambda i: False) is None


def _crop_folder(root, n: int, missing=(), garbage=()) -> tuple:
    paths = []
    for i in range(n):
        path = root / f"{i + 1:05d}.jpg"
        if i in missing:
            paths.append(None)
            continue
        if i in garbage:
            path.write_bytes(b"\x00not a jpeg" * 10)
        else:
            Image.fromarray(np.full((20, 20, 3), 8 * i, np.uint8)).save(path)
        paths.append(path)
    return tuple(paths)


def test_process_ref_windows_an_affwild2_like_track(tmp_path):
    labels = (0,) * 10 + (-1,) * 10 + (6,) * 10  # 30 frames at 10 fps, 1 s windows every 1 s
    paths = _crop_folder(tmp_path, 30, missing=(2,), garbage=(27,))
    ref = SampleRef(
        "trk", "affwild2", "affwild2", "train", "trk", frame_paths=paths, frame_labels=labels, fps=10.0
    )
    cfg = PreprocessConfig(frames=2, image_size=16, window_seconds=1.0, stride_seconds=1.0)
    out = process_ref(ref, cfg, detect=False)
    assert [s["span"] for s in out.samples] == [[0, 10], [20, 30]]  # the all -1 window is skipped
    assert out.skipped["window without annotated frame"] == 1
    first, last = out.samples
    assert first["frame_index"] == [1, 7] and first["frame_labels"] == [0, 0]  # sampled 2 has no crop -> 1
    assert last["frame_index"] == [22, 26] and last["label"] == 6  # sampled 27 (00028.jpg) is garbage -> 26
    assert out.skipped["unreadable image (frame)"] == 1 and out.frames_replaced == 2
    assert first["video"].shape == (2, 3, 16, 16) and first["video"].dtype == np.uint8
    assert abs(float(first["video"][0].mean()) - 8) < 2  # the pixels of crop index 1 (value 8), resized
    assert first["meta"]["id"] == "trk@0" and first["meta"]["ref_id"] == "trk"
    assert first["has_audio"] is False and not first["audio"].any()


def test_process_ref_keeps_unannotated_windows_of_the_test_split(tmp_path):
    paths = _crop_folder(tmp_path, 12)
    ref = SampleRef(
        "t", "affwild2", "affwild2", "test", "t", frame_paths=paths, frame_labels=(-1,) * 12, fps=10.0
    )
    out = process_ref(
        ref, PreprocessConfig(frames=2, image_size=8, window_seconds=1.0, stride_seconds=1.0), False
    )
    assert [s["span"] for s in out.samples] == [[0, 10], [2, 12]] and all(
        s["label"] == -1 for s in out.samples
    )
