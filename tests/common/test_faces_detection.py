"""Face crops: clip-level tracking of detections, centre-crop fallback and its counts, margins, resizing."""

from __future__ import annotations

import numpy as np

from expr_common.data.faces import (
    HaarDetector,
    centre_square,
    crop_square,
    detect_clip,
    expand_box,
    face_crops,
    fill_from_nearest,
    needs_detection,
)


def _frames(k: int, height: int = 60, width: int = 80) -> list[np.ndarray]:
    return [np.zeros((height, width, 3), np.uint8) for _ in range(k)]


def test_missing_boxes_borrow_the_nearest_detection_in_time():
    a, b = (1, 1, 5, 5), (20, 20, 5, 5)
    assert fill_from_nearest([None, a, None, None, b], [0, 10, 20, 30, 40]) == [a, a, a, b, b]
    assert fill_from_nearest([a, None, b], [0, 5, 10]) == [a, a, b]  # a tie goes to the earlier one
    assert fill_from_nearest([None, None], [0, 1]) == [None, None]


def test_crops_follow_the_track_and_count_frames_without_detection():
    frames = _frames(4)
    # A bright 10x10 "face" at x=50..60, y=20..30, seen by the detector in frame 2 only.
    for f in frames:
        f[20:30, 50:60] = 255
    boxes = [None, None, (50, 20, 10, 10), None]
    crops, stats = face_crops(frames, [0, 3, 6, 9], size=20, detect=True, margin=0.0, boxes=boxes)
    assert crops.shape == (4, 3, 20, 20) and crops.dtype == np.uint8
    assert crops.min() > 200  # every frame is cropped on the face, not the black background
    assert stats.frames_detected == 4 and stats.frames_without_detection == 3
    assert stats.clips_detected == 1 and stats.clips_centre_crop == 0


def test_a_clip_without_any_detection_falls_back_to_a_centre_crop_and_is_counted():
    frames = _frames(3, 40, 80)
    for f in frames:
        f[:, 20:60] = 255  # the centre square of an 80x40 frame is x=20..60
    crops, stats = face_crops(frames, [0, 1, 2], size=10, detect=True, boxes=[None, None, None])
    assert crops.min() == 255
    assert stats.clips_centre_crop == 1 and stats.frames_without_detection == 3


def test_margin_enlarges_the_box_into_a_square():
    assert expand_box((10, 20, 10, 10), 0.5) == (5, 15, 20)
    assert expand_box((0, 0, 10, 20), 0.0) == (-5, 0, 20)  # square around the longer side, same centre
    assert centre_square(40, 80) == (20, 0, 40)


def test_crop_outside_the_frame_repeats_edge_pixels():
    image = np.zeros((10, 10, 3), np.uint8)
    image[:, 0] = 200  # left column
    patch = crop_square(image, -5, 0, 10, 10)
    assert (patch[:, :6] == 200).all() and (patch[:, 6:] == 0).all()


def test_aligned_crops_are_only_resized():
    frame = np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    crops, stats = face_crops([frame], [0], size=48, detect=False)
    assert np.array_equal(crops[0], frame.transpose(2, 0, 1))
    assert stats.clips_detected == 0


def test_permissive_retry_only_for_a_clip_without_detection():
    calls = []

    def strict(frame):
        calls.append("strict")
        return None

    def loose(frame):
        calls.append("loose")
        return (1, 1, 4, 4)

    frames = _frames(4)
    boxes = detect_clip(frames, [0, 0, 1, 1], [strict, loose])  # repeated frames are detected once
    assert calls == ["strict", "strict", "loose", "loose"] and boxes == [(1, 1, 4, 4)] * 4
    calls.clear()
    assert detect_clip(frames, [0, 1, 2, 3], [loose, strict]) == [(1, 1, 4, 4)] * 4
    assert calls == ["loose"] * 4  # found at once: no second pass


def test_haar_detector_loads_from_the_wheel_and_finds_nothing_in_noise():
    detector = HaarDetector()
    assert detector(np.full((120, 160, 3), 128, np.uint8)) is None


def test_which_frames_need_the_detector():
    assert not needs_detection("affwild2", from_video=False)  # aligned crops
    assert not needs_detection("synthetic", from_video=False)  # GAN output
    assert needs_detection("afew", from_video=True)
    assert needs_detection("ckplus", from_video=False)
    assert needs_detection("affwild2", from_video=True)  # whole video frames
    assert not needs_detection("ckplus", from_video=False, faces="crops")
