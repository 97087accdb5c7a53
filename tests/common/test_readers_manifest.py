"""Generic manifest reader: the corpus manifests, every kind of row, and malformed tables."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from expr_common.data.manifest import read
from expr_common.data.readers import DatasetFormatError, read_dataset
from expr_common.labels import FEAR, HAPPINESS, SURPRISE, UNLABELLED, parse_label
from expr_common.media import write_video

HEADER = "sample_id,frames,audio,label,split,subject,domain"


def test_corpus_manifests(tiny_corpus):
    for name in ("ckplus", "afew", "affwild2"):
        path = tiny_corpus / name / "manifest.csv"
        with path.open() as handle:
            rows = list(csv.DictReader(handle))
        result = read_dataset("manifest", tiny_corpus / name)  # the folder holding manifest.csv
        assert [r.sample_id for r in result.refs] == [row["sample_id"] for row in rows]
        for ref, row in zip(result.refs, rows):
            assert ref.label == parse_label(row["label"]) and ref.split == row["split"]
            assert ref.domain == name and ref.dataset == "manifest"
            if name == "afew":
                assert ref.video == ref.audio == (path.parent / row["frames"]).absolute()
            else:  # a peak image or an Aff-Wild2 crop: a one-frame clip, no sound
                assert ref.frame_paths == ((path.parent / row["frames"]).absolute(),) and not ref.has_audio


def write_manifest(folder: Path, *rows: str, header: str = HEADER) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """A folder of frames, a single image, a video and a wav file (empty files: readers never decode)."""
    for name in ("clip/b.png", "clip/a.png", "clip/.hidden.png", "face.jpg", "voice.wav"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    write_video(tmp_path / "movie.mp4", np.zeros((3, 16, 16, 3), np.uint8), 5.0, audio=None)
    return tmp_path


def test_every_kind_of_row(media):
    path = write_manifest(
        media,
        "seq,clip,,happy,train,p1,",
        "one,face.jpg,,3,val,,synthetic",
        "vid,movie.mp4,movie.mp4,Surprise,test,p2,other",
        "talk,,voice.wav,,train,p3,afew",
    )
    refs = {r.sample_id: r for r in read(path).refs}
    assert refs["seq"].frame_paths == (
        media / "clip" / "a.png",
        media / "clip" / "b.png",
    )  # sorted, no hidden
    assert refs["seq"].label == HAPPINESS and refs["seq"].domain == "other"  # empty domain -> other
    assert refs["one"].frame_paths == (media / "face.jpg",) and refs["one"].label == FEAR
    assert refs["one"].subject == "one" and refs["one"].domain == "synthetic"
    assert refs["vid"].video == refs["vid"].audio == media / "movie.mp4" and refs["vid"].label == SURPRISE
    assert not refs["talk"].has_video and refs["talk"].audio == media / "voice.wav"
    assert refs["talk"].label == UNLABELLED
    assert refs["seq"].source == f"{path}:2"
    # probing for sound finds the silent movie
    probed = read(media, check_audio=True)
    assert {r.sample_id: r.has_audio for r in probed.refs}["vid"] is False
    assert probed.silent_videos == [media / "movie.mp4"]
    assert [r.sample_id for r in read(media, splits=("train",)).refs] == ["seq", "talk"]


def test_missing_file_is_counted_not_fatal(media):
    path = write_manifest(
        media, "ok,face.jpg,,0,train,,", "gone,nothere.jpg,,0,train,,", "gone2,,lost.wav,1,val,,"
    )
    result = read(path)
    assert [r.sample_id for r in result.refs] == ["ok"]
    assert result.skipped["missing file"] == 2
    assert f"{path}:3: gone" in result.warnings[0] and "nothere.jpg" in result.warnings[0]


def test_missing_column_is_named(tmp_path):
    path = write_manifest(tmp_path, "a,x.jpg,,0,train,s", header="sample_id,frames,audio,label,split,subject")
    with pytest.raises(DatasetFormatError, match=r"manifest\.csv:1: header lacks column\(s\) domain"):
        read(path)


def test_duplicated_sample_id_names_both_lines(media):
    path = write_manifest(media, "a,face.jpg,,0,train,,", "b,face.jpg,,0,train,,", "a,face.jpg,,1,val,,")
    with pytest.raises(DatasetFormatError, match=r"manifest\.csv:4: sample_id 'a' repeats the one on line 2"):
        read(path)


def test_bad_label_names_file_and_line(media):
    path = write_manifest(media, "a,face.jpg,,0,train,,", "b,face.jpg,,joyful-ish,train,,")
    with pytest.raises(DatasetFormatError, match=r"manifest\.csv:3: unknown label 'joyful-ish'"):
        read(path)
    path = write_manifest(media, "a,face.jpg,,12,train,,")
    with pytest.raises(DatasetFormatError, match=r"manifest\.csv:2: label 12 is outside"):
        read(path)


def test_row_with_neither_frames_nor_audio(media):
    path = write_manifest(media, "a,face.jpg,,0,train,,", "empty,,,0,train,,")
    with pytest.raises(
        DatasetFormatError, match=r"manifest\.csv:3: sample empty has neither frames nor audio"
    ):
        read(path)


def test_bad_split_domain_and_kind_are_errors_collected_when_not_strict(media):
    path = write_manifest(
        media,
        "a,face.jpg,,0,training,,",
        "b,face.jpg,,0,train,,Studio",  # any lower-case name is a domain; this one is not lower-case
        "c,notes.txt,,0,train,,",
        "d,face.jpg,,0,val,,",
    )
    with pytest.raises(DatasetFormatError, match=r":2: split 'training' is not one of train, val, test"):
        read(path)
    result = read(path, strict=False)
    assert [e.line for e in result.errors] == [2, 3, 4]
    assert "domain 'Studio'" in str(result.errors[1]) and "notes.txt" in str(result.errors[2])
    assert [r.sample_id for r in result.refs] == ["d"]


def test_wrong_root_and_empty_manifest(tmp_path):
    with pytest.raises(DatasetFormatError, match="no manifest.csv in this folder"):
        read(tmp_path)
    with pytest.raises(DatasetFormatError, match="does not exist"):
        read(tmp_path / "other.csv")
    write_manifest(tmp_path)
    with pytest.raises(DatasetFormatError, match="no samples found"):
        read(tmp_path)


def test_tiff_faces_and_flv_clips_are_read(tmp_path):
    """JAFFE's faces are TIFF (some palette images) and CREMA-D's clips FLV: both are rows like any other,
    and the palette TIFF decodes to the grey it shows."""
    import av
    from PIL import Image

    from expr_common.data.faces import read_image
    from expr_common.media import read_video

    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(grey, "L").convert("P").save(tmp_path / "face.tiff")
    with av.open(str(tmp_path / "clip.flv"), "w", format="flv") as container:
        stream = container.add_stream("flv", rate=5)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 128, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    path = write_manifest(tmp_path, "img,face.tiff,,Fear,train,p1,", "vid,clip.flv,,Anger,test,p2,")
    refs = {r.sample_id: r for r in read(path).refs}
    assert refs["img"].frame_paths == (tmp_path / "face.tiff",) and refs["vid"].video == tmp_path / "clip.flv"
    pixels = read_image(str(tmp_path / "face.tiff"))
    assert pixels.shape == (8, 8, 3) and (pixels == grey[..., None]).all()
    assert read_video(tmp_path / "clip.flv").shape[0] == 3
