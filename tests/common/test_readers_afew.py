"""AFEW reader: labels from emotion folders, either case, audio probing, and bad trees."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import numpy as np
import pytest

from expr_common.data.afew import read
from expr_common.data.readers import DatasetFormatError, read_dataset
from expr_common.labels import ANGER, CLASS_NAMES, SADNESS, afew_folder_to_abaw
from expr_common.media import write_video


def test_tiny_corpus_labels_from_folders(tiny_corpus):
    root = tiny_corpus / "afew"
    result = read_dataset("afew", root)
    info = json.loads((tiny_corpus / "corpus.json").read_text())["counts"]["afew"]
    counts = {s: Counter(CLASS_NAMES[r.label] for r in result.refs if r.split == s) for s in ("train", "val")}
    assert counts == info
    for ref in result.refs:
        assert ref.label == afew_folder_to_abaw(ref.video.parent.name)
        assert ref.video == ref.audio and ref.video.suffix == ".avi" and ref.frame_paths is None
        assert ref.sample_id == ref.subject == ref.video.stem and ref.domain == "afew"
        assert ref.split == {"Train": "train", "Val": "val"}[ref.video.parent.parent.name]
    assert read_dataset("afew", root, splits=("val",)).refs == [r for r in result.refs if r.split == "val"]


def test_lower_case_folders_and_mp4(tmp_path):
    for rel in ("train/angry/001.avi", "train/angry/notes.txt", "val/SAD/002.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")  # not probed by default
    result = read(tmp_path)
    assert [(r.sample_id, r.split, r.label) for r in result.refs] == [
        ("001", "train", ANGER),
        ("002", "val", SADNESS),
    ]


def test_unknown_emotion_folder_is_named(tmp_path):
    (tmp_path / "Train" / "Happyy").mkdir(parents=True)
    (tmp_path / "Train" / "Happyy" / "001.avi").write_bytes(b"")
    with pytest.raises(DatasetFormatError, match=r"Happyy: unknown emotion folder"):
        read(tmp_path)
    assert "Happyy" in str(read(tmp_path, strict=False).errors[0])


def test_check_audio_finds_a_clip_without_sound(tmp_path, tiny_corpus):
    voiced = next((tiny_corpus / "afew" / "Train" / "Angry").glob("*.avi"))
    shutil.copy(voiced, tmp_path / "voiced.avi")
    (tmp_path / "Train" / "Angry").mkdir(parents=True)
    shutil.copy(voiced, tmp_path / "Train" / "Angry" / "111.avi")
    silent = write_video(tmp_path / "Train" / "Angry" / "222.avi", np.zeros((4, 16, 16, 3), np.uint8), 8.0)
    fast = {r.sample_id: r for r in read(tmp_path).refs}
    assert fast["222"].has_audio  # not probed: assumed to have sound
    result = read(tmp_path, check_audio=True)
    refs = {r.sample_id: r for r in result.refs}
    assert refs["111"].has_audio and refs["111"].fps == 8.0
    assert not refs["222"].has_audio and refs["222"].video == silent.absolute()
    assert result.silent_videos == [silent.absolute()]


def test_wrong_root_and_empty_dataset(tmp_path):
    (tmp_path / "clips").mkdir()
    with pytest.raises(DatasetFormatError, match=r"no Train/ or Val/ folder"):
        read(tmp_path)
    with pytest.raises(DatasetFormatError, match="does not exist"):
        read(tmp_path / "missing")
    (tmp_path / "Val" / "Fear").mkdir(parents=True)
    with pytest.raises(DatasetFormatError, match="no samples found"):
        read(tmp_path)
    assert read(tmp_path, strict=False).refs == []


def test_duplicate_clip_ids_keep_the_first(tmp_path):
    for rel in ("Train/Fear/007.avi", "Val/Sad/007.avi"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    result = read(tmp_path)
    assert [r.split for r in result.refs] == ["train"]
    assert result.skipped["duplicate clip id"] == 1 and "007" in result.warnings[0]
