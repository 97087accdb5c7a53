"""MTCNN from the facenet-pytorch wheel (weights inside it) as ``preprocess.face_detector: mtcnn``, checked
against where the corpus's renderer drew each face (``face_boxes.json``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from expr_common.data.config import PreprocessConfig
from expr_common.data.faces import HaarDetector, detectors_for, face_crops
from expr_common.data.mtcnn import PERMISSIVE, STRICT, MtcnnDetector
from expr_common.media import read_video
from expr_common.synth.corpus import FACE_BOXES


def _inside(box, square) -> bool:
    x, y, w, h = box
    sx, sy, side = square
    cx, cy = x + w / 2, y + h / 2
    return sx <= cx <= sx + side and sy <= cy <= sy + side and w <= side * 1.2


def test_the_corpus_records_where_each_face_was_drawn(tiny_corpus) -> None:
    truth = json.loads((tiny_corpus / FACE_BOXES).read_text())
    assert truth["afew"] and truth["ckplus"]
    for path, boxes in truth["afew"].items():
        frames = read_video(tiny_corpus / "afew" / path)
        assert len(frames) <= len(boxes) <= len(frames) + 1  # MPEG-4 AVI may count one frame more
        height, width = frames.shape[1:3]
        for x0, y0, side in boxes:
            assert 0 <= x0 <= width - side and 0 <= y0 <= height - side


def test_mtcnn_finds_the_drawn_faces_and_gives_eye_landmarks(tiny_corpus) -> None:
    truth = json.loads((tiny_corpus / FACE_BOXES).read_text())
    strict, retry = detectors_for(PreprocessConfig(face_detector="mtcnn"))
    assert (
        isinstance(strict, MtcnnDetector) and strict.thresholds == STRICT and retry.thresholds == PERMISSIVE
    )
    found = inside = 0
    for path, boxes in sorted(truth["afew"].items()):
        frames = read_video(tiny_corpus / "afew" / path)
        middle = len(frames) // 2
        result = strict.detect_landmarks(frames[middle])
        if result is None:
            continue
        found += 1
        box, points = result
        inside += _inside(box, boxes[middle])
        assert points.shape == (5, 2)
        (lx, ly), (rx, ry) = points[0], points[1]  # the eyes: left of the image first, near one height
        assert lx < rx and abs(ly - ry) < 0.25 * box[2]
    assert found >= 0.5 * len(truth["afew"]) and inside == found  # every box it gives is on the drawn face


def test_mtcnn_plugs_into_the_face_crops_of_prepare(tiny_corpus) -> None:
    truth = json.loads((tiny_corpus / FACE_BOXES).read_text())
    path = sorted(truth["afew"])[0]
    frames = list(read_video(tiny_corpus / "afew" / path))
    cfg = PreprocessConfig(face_detector="mtcnn", image_size=32, frames=len(frames))
    crops, stats = face_crops(
        frames, list(range(len(frames))), size=32, detect=True, detectors=detectors_for(cfg)
    )
    assert crops.shape == (len(frames), 3, 32, 32) and stats.clips_detected == 1
    assert stats.clips_centre_crop == 0
    # The Haar cascade stays the default and the other choice.
    assert PreprocessConfig().face_detector == "haar"
    assert isinstance(detectors_for(PreprocessConfig())[0], HaarDetector)
    assert not np.array_equal(crops[0], crops[0][:, ::-1])  # a real face crop, not a constant patch


def test_a_tilted_face_is_cropped_eyes_level() -> None:
    """Two 'eyes' on a line tilted by 20 degrees come out on one row after the roll MTCNN's points give."""
    from expr_common.data.faces import crop_square
    from expr_common.data.mtcnn import eye_roll

    image = np.zeros((200, 200, 3), np.uint8)
    centre, half = np.array([100.0, 100.0]), 30.0
    tilt = np.radians(20)
    eyes = [centre + s * half * np.array([np.cos(tilt), np.sin(tilt)]) for s in (-1, 1)]  # right eye lower
    for x, y in eyes:
        image[int(round(y)) - 2 : int(round(y)) + 3, int(round(x)) - 2 : int(round(x)) + 3] = 255
    roll = eye_roll(np.array(eyes))
    assert roll == pytest.approx(20, abs=0.01)
    level = crop_square(image, 40, 40, 120, 120, roll)
    tilted = crop_square(image, 40, 40, 120, 120)
    for crop, same_row in ((level, True), (tilted, False)):
        ys, xs = np.nonzero(crop[..., 0] > 128)
        left, right = ys[xs < 60].mean(), ys[xs >= 60].mean()
        assert (abs(left - right) < 1.5) == same_row
    assert crop_square(image, 40, 40, 120, 60, 0.0).shape == (60, 60, 3)
