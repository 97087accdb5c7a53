"""CK+ reader: peak frames, contempt -> Other, subject-wise splits, neutral_first, bad emotion files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from expr_common.data.ckplus import read
from expr_common.data.readers import DatasetFormatError, read_dataset
from expr_common.labels import CKPLUS_CONTEMPT, NEUTRAL, OTHER, ckplus_to_abaw


def emotion_files(root: Path) -> dict[str, Path]:
    return {"_".join(p.name.split("_")[:2]): p for p in (root / "Emotion").rglob("*_emotion.txt")}


def test_tiny_corpus_peak_frames_and_labels(tiny_corpus):
    root = tiny_corpus / "ckplus"
    result = read_dataset("ckplus", root)
    emotions = emotion_files(root)
    info = json.loads((tiny_corpus / "corpus.json").read_text())["counts"]["ckplus"]
    assert len(result.refs) == len(emotions) == sum(info["labelled"].values())
    assert result.skipped["unlabelled sequence"] == info["unlabelled"]["unlabelled"]
    for ref in result.refs:
        emotion = emotions[ref.sample_id]
        assert ref.label == ckplus_to_abaw(float(emotion.read_text()))
        images = sorted((root / "cohn-kanade-images" / ref.subject / emotion.parent.name).glob("*.png"))
        assert ref.frame_paths == tuple(images[-3:])
        # the emotion file names the peak frame, which ends the clip
        assert ref.frame_paths[-1].stem == emotion.name.removesuffix("_emotion.txt")
        assert ref.subject == ref.sample_id[:4] and ref.domain == "ckplus" and not ref.has_audio


def test_contempt_becomes_other(tiny_corpus):
    root = tiny_corpus / "ckplus"
    contempt = [k for k, p in emotion_files(root).items() if int(float(p.read_text())) == CKPLUS_CONTEMPT]
    assert contempt
    labels = {r.sample_id: r.label for r in read(root).refs}
    assert all(labels[k] == OTHER for k in contempt)


def test_peak_frames_option_and_neutral_first(tiny_corpus):
    root = tiny_corpus / "ckplus"
    plain = {r.sample_id: r for r in read(root, peak_frames=1).refs}
    assert all(len(r.frame_paths) == 1 for r in plain.values())
    with_neutral = {r.sample_id: r for r in read(root, peak_frames=1, neutral_first=True).refs}
    assert len(with_neutral) == 2 * len(plain)
    for sample_id, ref in plain.items():
        neutral = with_neutral[f"{sample_id}_neutral"]
        assert neutral.label == NEUTRAL and neutral.frame_paths[0].stem.endswith("_00000001")
        assert neutral.split == ref.split and neutral.subject == ref.subject


def make_subjects(root: Path, subjects: int, sequences: int = 2, frames: int = 4) -> None:
    """Empty png files (readers never decode) and an emotion file per sequence."""
    for s in range(subjects):
        subject = f"S{100 + s:03d}"
        for q in range(1, sequences + 1):
            folder = root / "cohn-kanade-images" / subject / f"{q:03d}"
            folder.mkdir(parents=True)
            for f in range(1, frames + 1):
                (folder / f"{subject}_{q:03d}_{f:08d}.png").write_bytes(b"")
            emo = root / "Emotion" / subject / f"{q:03d}" / f"{subject}_{q:03d}_{frames:08d}_emotion.txt"
            emo.parent.mkdir(parents=True)
            emo.write_text(f"   {float(1 + (s + q) % 7):.7e}\n")


def test_splits_are_subject_wise_and_deterministic(tmp_path):
    make_subjects(tmp_path, subjects=30)
    first = read(tmp_path, val_fraction=0.3).refs
    assert [(r.sample_id, r.split) for r in first] == [
        (r.sample_id, r.split) for r in read(tmp_path, val_fraction=0.3).refs
    ]
    train = {r.subject for r in first if r.split == "train"}
    val = {r.subject for r in first if r.split == "val"}
    assert train and val and not train & val  # nobody on both sides
    assert 3 <= len(val) <= 16  # about 30% of the 30 subjects
    assert {r.split for r in read(tmp_path, val_fraction=0.0).refs} == {"train"}
    only_val = read(tmp_path, splits=("val",), val_fraction=0.3).refs
    assert {r.subject for r in only_val} == val


def test_malformed_emotion_file_is_named(tmp_path):
    make_subjects(tmp_path, subjects=1, sequences=1)
    bad = next((tmp_path / "Emotion").rglob("*_emotion.txt"))
    bad.write_text("   three\n")
    with pytest.raises(DatasetFormatError, match=rf"{bad.name}:1: expected one CK\+ emotion code"):
        read(tmp_path)
    bad.write_text("   9.0000000e+00\n")  # a number, but not a CK+ code
    with pytest.raises(DatasetFormatError, match=rf"{bad.name}:1:"):
        read(tmp_path)
    result = read(tmp_path, strict=False)
    assert result.refs == [] and len(result.errors) == 1 and result.skipped["bad emotion file"] == 1


def test_wrong_root_and_unlabelled_only(tmp_path):
    with pytest.raises(DatasetFormatError, match="no cohn-kanade-images/"):
        read(tmp_path)
    make_subjects(tmp_path, subjects=2)
    for path in (tmp_path / "Emotion").rglob("*_emotion.txt"):
        path.unlink()
    with pytest.raises(DatasetFormatError, match=r"no samples found.*4 unlabelled sequence"):
        read(tmp_path)
    (tmp_path / "Emotion").rename(tmp_path / "Labels")
    with pytest.raises(DatasetFormatError, match="no Emotion/"):
        read(tmp_path)
