from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score
from sklearn.metrics import confusion_matrix as sk_confusion

from expr_common.metrics import (
    confusion_matrix,
    evaluate_predictions,
    macro_f1,
    plot_confusion,
    smooth_probabilities,
)


@pytest.mark.parametrize("seed", range(5))
def test_macro_f1_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(-1, 8, 400)
    pred = np.where(rng.random(400) < 0.5, y, rng.integers(0, 8, 400)).clip(0, 7)
    if seed == 0:  # a class predicted but never true, and a class never present at all
        y[y == 3] = 2
        y[y == 5] = 4
        pred[pred == 5] = 4
    keep = y != -1
    expected = f1_score(y[keep], pred[keep], average="macro")
    assert macro_f1(y, pred) == pytest.approx(expected, abs=1e-12)
    report = evaluate_predictions(y, pred)
    assert report["macro_f1"] == pytest.approx(expected, abs=1e-12)
    assert report["accuracy"] == pytest.approx(accuracy_score(y[keep], pred[keep]))
    assert report["frames"] == keep.sum()
    assert np.array_equal(confusion_matrix(y, pred), sk_confusion(y[keep], pred[keep], labels=range(8)))


def test_absent_classes_are_null_and_unlabelled_frames_unscored():
    y = np.array([0, 0, 1, -1, -1])
    pred = np.array([0, 1, 1, 7, 7])  # the -1 frames' predictions must not count
    report = evaluate_predictions(y, pred)
    assert report["per_class_f1"]["Other"] is None and report["per_class_f1"]["Fear"] is None
    assert report["per_class_f1"]["Neutral"] == pytest.approx(2 / 3)
    assert report["frames"] == 3
    with pytest.raises(ValueError):
        macro_f1(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 9]), np.array([0, 1]))


def test_smoothing():
    prob = np.zeros((9, 2))
    prob[:, 0] = [1, 1, 1, 0, 1, 1, 1, 1, 1]  # a one-frame flicker
    prob[:, 1] = 1 - prob[:, 0]
    smooth = smooth_probabilities(prob, 3)
    assert smooth.argmax(1).tolist() == [0] * 9
    assert np.allclose(smooth.sum(1), 1)
    assert smooth[3, 0] == pytest.approx(2 / 3)
    assert smooth_probabilities(prob, 1) is prob


def test_confusion_png(tmp_path):
    path = plot_confusion(confusion_matrix([0, 1, 2, 2], [0, 2, 2, 2]), tmp_path / "cm.png")
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
