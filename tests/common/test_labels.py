from __future__ import annotations

import pytest

from expr_common import labels


def test_abaw_order_and_header():
    assert labels.CLASS_NAMES == (
        "Neutral",
        "Anger",
        "Disgust",
        "Fear",
        "Happiness",
        "Sadness",
        "Surprise",
        "Other",
    )
    assert labels.AFFWILD2_HEADER == "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"
    assert labels.SUBMISSION_HEADER.startswith("image_location,Neutral,")
    assert labels.RARE_CLASSES == (labels.ANGER, labels.DISGUST, labels.FEAR)
    assert sum(labels.AFFWILD2_TRAIN_SHARES) == pytest.approx(1.0, abs=0.01)


def test_afew_folders_map_to_abaw():
    expected = {"Angry": 1, "Disgust": 2, "Fear": 3, "Happy": 4, "Neutral": 0, "Sad": 5, "Surprise": 6}
    assert dict(labels.AFEW_FOLDERS) == expected
    assert labels.afew_folder_to_abaw("happy") == 4  # lower-case folders exist in some copies
    assert labels.OTHER not in labels.AFEW_FOLDERS.values()
    with pytest.raises(ValueError, match="AFEW emotion folder"):
        labels.afew_folder_to_abaw("Contempt")


def test_ckplus_codes_map_to_abaw_with_contempt_as_other():
    assert [labels.ckplus_to_abaw(c) for c in range(8)] == [0, 1, 7, 2, 3, 4, 5, 6]
    assert labels.ckplus_to_abaw(float("   3.0000000e+00")) == labels.DISGUST
    assert labels.ckplus_to_abaw(2.0) == labels.OTHER
    for bad in (8, -1, 2.5):
        with pytest.raises(ValueError):
            labels.ckplus_to_abaw(bad)


@pytest.mark.parametrize(
    "value, index",
    [
        ("3", 3),
        (5, 5),
        ("-1", -1),
        ("Happiness", 4),
        ("happy", 4),
        ("ANGRY", 1),
        (" sad ", 5),
        ("contempt", 7),
        ("surprised", 6),
        ("fearful", 3),
    ],
)
def test_parse_label(value, index):
    assert labels.parse_label(value) == index


@pytest.mark.parametrize("value", ["8", 9, -2, "joyful-ish", True, ""])
def test_parse_label_rejects(value):
    with pytest.raises(ValueError):
        labels.parse_label(value)


def test_label_name():
    assert labels.label_name(6) == "Surprise" and labels.label_name(-1) == "unlabelled"
    with pytest.raises(ValueError):
        labels.label_name(8)


def test_coarse_groups_and_mu_matrix():
    groups = labels.DEFAULT_COARSE_GROUPS
    assert len(groups) == labels.NUM_CLASSES
    # docs/method.md, "Coarse-fine granularity loss":
    # Q1 {Happiness, Surprise}, Q2 {Anger, Disgust, Fear}, Q3 {Sadness}, Q4 {Neutral, Other}
    assert groups[labels.HAPPINESS] == groups[labels.SURPRISE] == 0
    assert groups[labels.ANGER] == groups[labels.DISGUST] == groups[labels.FEAR] == 1
    assert groups[labels.SADNESS] == 2
    assert groups[labels.NEUTRAL] == groups[labels.OTHER] == 3
    m = labels.mu_matrix()
    assert all(m[i][i] == 0 for i in range(4))
    assert all(m[i][j] == m[j][i] for i in range(4) for j in range(4))
    assert m[0][2] == m[1][3] == 1.0  # opposite quadrants
    assert m[0][1] == m[0][3] == m[1][2] == m[2][3] == 0.5  # adjacent quadrants
    assert labels.mu_matrix((1, 2, 3, 4, 5, 6))[3][1] == 5
    with pytest.raises(ValueError):
        labels.mu_matrix((1.0, 2.0))
