"""Aff-Wild2 reader: the tiny corpus end to end, and every malformed-input case on hand-made trees."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from expr_common.data.affwild2 import TEST_LIST, read
from expr_common.data.readers import DatasetFormatError, read_dataset
from expr_common.labels import AFFWILD2_HEADER, CLASS_NAMES, UNLABELLED
from expr_common.media import probe, write_video


@pytest.fixture(scope="module")
def corpus(tiny_corpus):
    root = tiny_corpus / "affwild2"
    return root, read_dataset("affwild2", root)


def annotation(root: Path, name: str) -> list[int]:
    files = list((root / "EXPR_Recognition_Challenge").glob(f"*_Set/{name}.txt"))
    assert len(files) == 1
    return [int(v) for v in files[0].read_text().splitlines()[1:]]


def test_counts_match_corpus_info(corpus, tiny_corpus):
    root, result = corpus
    info = json.loads((tiny_corpus / "corpus.json").read_text())["counts"]["affwild2"]
    counts: dict[str, Counter] = {}
    for ref in result.refs:
        table = counts.setdefault(ref.split, Counter())
        table.update(CLASS_NAMES[x] if x != UNLABELLED else "unlabelled" for x in ref.frame_labels)
    assert counts["train"] == info["train"] and counts["val"] == info["val"]
    assert counts["test"] == {"unlabelled": info["test"]["frames"]}
    assert len(result.refs) == len({r.sample_id for r in result.refs}) == 7
    assert all(
        r.domain == "affwild2" and r.dataset == "affwild2" and r.subject == r.sample_id for r in result.refs
    )


def test_labels_follow_the_file_and_frames_follow_the_video(corpus):
    root, result = corpus
    for ref in (r for r in result.refs if r.split != "test"):
        lines = annotation(root, ref.sample_id)
        frames = probe(
            root / "videos" / f"{ref.sample_id.removesuffix('_left').removesuffix('_right')}.mp4"
        ).frames
        assert len(ref.frame_labels) == frames  # one longer file trimmed, the others whole
        assert list(ref.frame_labels) == lines[:frames]
        assert ref.fps == 8.0 and ref.video is None and ref.source.endswith(f"{ref.sample_id}.txt")


def test_off_by_one_annotations_are_trimmed_and_counted(corpus):
    root, result = corpus
    longer = 0
    for ref in (r for r in result.refs if r.split != "test"):
        longer += len(annotation(root, ref.sample_id)) == len(ref.frame_labels) + 1
    assert longer == 2  # the last video of train and of val
    assert result.skipped["annotation line past last frame"] == longer


def test_left_and_right_share_the_video_and_its_sound(corpus):
    root, result = corpus
    by_id = {r.sample_id: r for r in result.refs}
    pairs = [n.removesuffix("_left") for n in by_id if n.endswith("_left")]
    assert pairs
    for video in pairs:
        left, right = by_id[f"{video}_left"], by_id[f"{video}_right"]
        assert left.audio == right.audio == root / "videos" / f"{video}.mp4"
        assert left.has_audio and left.video is None
        assert left.frame_paths[0].parent.name == f"{video}_left"


def test_unlabelled_frames_stay_minus_one_and_missing_crops_are_none(corpus, tiny_corpus):
    root, result = corpus
    minus_one = missing = 0
    for ref in (r for r in result.refs if r.split != "test"):
        for i, (path, label) in enumerate(zip(ref.frame_paths, ref.frame_labels), start=1):
            crop = root / "cropped_aligned" / ref.sample_id / f"{i:05d}.jpg"
            assert (path is None) == (not crop.exists())
            assert path is None or path == crop
            minus_one += label == UNLABELLED
            missing += path is None and label != UNLABELLED
    assert minus_one == result.skipped["-1 frames"] > 0
    info = json.loads((tiny_corpus / "corpus.json").read_text())
    assert missing == result.skipped["annotated frame without crop"] == info["affwild2_missing_crops"] > 0


def test_test_tracks_come_from_the_release_list(corpus):
    root, result = corpus
    names = (root / TEST_LIST).read_text().split()
    tests = [r for r in result.refs if r.split == "test"]
    assert sorted(r.sample_id for r in tests) == sorted(names)
    for ref in tests:
        assert set(ref.frame_labels) == {UNLABELLED}
        assert len(ref.frame_paths) == probe(ref.audio).frames
    only_test = read_dataset("affwild2", root, splits=("test",))
    assert {r.split for r in only_test.refs} == {"test"}


# ---------------------------------------------------------------- hand-made trees


def make_tree(
    root: Path, tracks: dict[str, str], crops: dict[str, range], folder: str = "EXPR_Recognition_Challenge"
) -> Path:
    """Annotation files (text as given) in Train_Set and empty crop files; no videos unless added."""
    for name, text in tracks.items():
        ann = root / folder / "Train_Set" / f"{name}.txt"
        ann.parent.mkdir(parents=True, exist_ok=True)
        ann.write_text(text)
    for name, numbers in crops.items():
        (root / "cropped_aligned" / name).mkdir(parents=True, exist_ok=True)
        for i in numbers:
            (root / "cropped_aligned" / name / f"{i:05d}.jpg").write_bytes(b"")  # readers never decode
    return root


def labels_text(*values: object, header: str = AFFWILD2_HEADER) -> str:
    return "\n".join([header, *map(str, values)]) + "\n"


def test_wrong_header_names_file_and_line_one(tmp_path):
    make_tree(tmp_path, {"v1": labels_text(0, 1, header="Neutral,Anger")}, {"v1": range(1, 3)})
    with pytest.raises(DatasetFormatError, match=r"v1\.txt:1: expected the header") as err:
        read(tmp_path)
    assert err.value.line == 1 and Path(err.value.path).name == "v1.txt"


def test_non_integer_line_names_file_and_line(tmp_path):
    make_tree(tmp_path, {"v1": labels_text(0, 1, "happy", 2)}, {"v1": range(1, 5)})
    with pytest.raises(DatasetFormatError, match=r"v1\.txt:4: expected one integer label.*'happy'"):
        read(tmp_path)


def test_out_of_range_label_is_an_error(tmp_path):
    make_tree(tmp_path, {"v1": labels_text(0, 8, 1)}, {"v1": range(1, 4)})
    with pytest.raises(DatasetFormatError, match=r"v1\.txt:3: label 8 is outside -1\.\.7"):
        read(tmp_path)


def test_non_strict_collects_every_bad_line_and_keeps_good_files(tmp_path):
    make_tree(
        tmp_path,
        {"bad": labels_text(0, "x", 9, 1), "good": labels_text(4, 4)},
        {"bad": range(1, 5), "good": range(1, 3)},
    )
    result = read(tmp_path, strict=False)
    assert [(Path(e.path).name, e.line) for e in result.errors] == [("bad.txt", 3), ("bad.txt", 4)]
    assert [r.sample_id for r in result.refs] == ["good"]
    assert result.skipped["bad annotation file"] == 1


def test_older_challenge_folder_and_no_video(tmp_path):
    make_tree(
        tmp_path, {"360": labels_text(0, -1, 3, 3, 5)}, {"360": [1, 2, 4]}, "EXPR_Classification_Challenge"
    )
    result = read(tmp_path)
    (ref,) = result.refs
    assert ref.frame_labels == (0, -1, 3, 3)  # crops up to 4, 5 lines: the fifth is the tolerated extra line
    assert [p is None for p in ref.frame_paths] == [False, False, True, False]
    assert ref.audio is None and ref.fps is None
    assert result.skipped == Counter(
        {"-1 frames": 1, "annotated frame without crop": 1, "annotation line past last frame": 1,
         "track without video": 1}
    )  # fmt: skip
    assert any("no video" in w for w in result.warnings)


def test_video_frame_count_decides_and_silent_video_has_no_audio(tmp_path):
    make_tree(tmp_path, {"video9_left": labels_text(1, 1, 2, 2, 2, 0)}, {"video9_left": range(1, 4)})
    video = write_video(
        tmp_path / "batch2" / "video9.mp4", np.zeros((5, 16, 16, 3), np.uint8), 5.0, audio=None
    )
    result = read(tmp_path)
    (ref,) = result.refs
    assert len(ref.frame_labels) == 5  # the video's frame count, not the 3 crops
    assert ref.frame_paths[3:] == (None, None) and result.skipped["annotated frame without crop"] == 2
    assert ref.fps == 5.0 and ref.audio is None and not ref.has_audio
    assert result.silent_videos == [video.absolute()]
    assert any(str(video) in w and "no audio" in w for w in result.warnings)


def test_wrong_root_and_empty_dataset_say_what_was_expected(tmp_path):
    with pytest.raises(DatasetFormatError, match="does not exist"):
        read(tmp_path / "nowhere")
    with pytest.raises(
        DatasetFormatError, match="no EXPR_Recognition_Challenge/ or EXPR_Classification_Challenge/"
    ):
        read(tmp_path)
    (tmp_path / "EXPR_Recognition_Challenge" / "Train_Set").mkdir(parents=True)
    (tmp_path / "cropped_aligned").mkdir()
    with pytest.raises(DatasetFormatError, match="no samples found"):
        read(tmp_path)


def test_read_dataset_rejects_unknown_format_split_and_option(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset format 'affwild'"):
        read_dataset("affwild", tmp_path)
    make_tree(tmp_path, {"v1": labels_text(0)}, {"v1": [1]})
    with pytest.raises(ValueError, match="unknown split"):
        read_dataset("affwild2", tmp_path, splits=("training",))
    with pytest.raises(ValueError, match="unknown option.*peak_frames"):
        read_dataset("affwild2", tmp_path, peak_frames=2)


def test_without_a_video_a_much_longer_annotation_keeps_its_tail(tmp_path):
    # Only the documented off-by-one is trimmed when no video tells the frame count: the tail frames
    # are then annotated frames whose face was not found.
    make_tree(tmp_path, {"v2": labels_text(0, 1, 2, 3, 4, 5)}, {"v2": range(1, 3)})
    result = read(tmp_path)
    (ref,) = result.refs
    assert ref.frame_labels == (0, 1, 2, 3, 4, 5) and ref.frame_paths[2:] == (None,) * 4
    assert result.skipped["annotated frame without crop"] == 4
    assert "annotation line past last frame" not in result.skipped
