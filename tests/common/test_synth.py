"""The procedural corpus: every layout detail of docs/datasets.md, determinism, manifests."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from expr_common.data.manifest import COLUMNS as MANIFEST_COLUMNS
from expr_common.labels import AFEW_FOLDERS, AFFWILD2_HEADER, CLASS_NAMES, UNLABELLED
from expr_common.media import probe, read_audio, read_video
from expr_common.synth.corpus import CONTACT_SHEET, CORPUS_INFO, generate
from expr_common.synth.presets import preset


def file_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def small_config(seed: int):
    cfg = preset("tiny", seed)
    cfg.ckplus.subjects = 2
    cfg.afew.train_per_class, cfg.afew.val_per_class = 1, 0
    cfg.affwild2.train_videos, cfg.affwild2.val_videos, cfg.affwild2.test_videos = 2, 2, 0
    return cfg


def test_same_seed_same_bytes_different_seed_different(tmp_path):
    first = file_hashes(generate(small_config(1), tmp_path / "a") and tmp_path / "a")
    second = file_hashes(generate(small_config(1), tmp_path / "b") and tmp_path / "b")
    other = file_hashes(generate(small_config(2), tmp_path / "c") and tmp_path / "c")
    assert first == second
    assert len(first) > 100
    media = [k for k in first if k.endswith((".mp4", ".avi", ".png", ".jpg"))]
    assert media and all(first[k] == second[k] for k in media)
    shared = set(first) & set(other)
    assert sum(first[k] != other[k] for k in shared) > 0.5 * len(shared)


def test_generate_refuses_to_overwrite(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--force"):
        generate(small_config(0), tmp_path / "x")
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


# ---------------------------------------------------------------- CK+


def test_ckplus_layout(tiny_corpus):
    root = tiny_corpus / "ckplus"
    images = sorted((root / "cohn-kanade-images").rglob("*.png"))
    assert images
    pattern = re.compile(r"cohn-kanade-images/(S\d{3})/(\d{3})/\1_\2_(\d{8})\.png$")
    sequences: dict[Path, list[int]] = {}
    for path in images:
        match = pattern.search(path.as_posix())
        assert match, path
        sequences.setdefault(path.parent, []).append(int(match.group(3)))
    for folder, numbers in sequences.items():
        assert numbers == list(range(1, len(numbers) + 1)), folder  # 1-based, consecutive
    with Image.open(images[0]) as image:
        assert image.mode == "L" and image.size in ((640, 490), (640, 480))
    emotion = sorted((root / "Emotion").rglob("*_emotion.txt"))
    codes = set()
    for path in emotion:
        text = path.read_text()
        assert re.fullmatch(r"   \d\.0000000e\+00\n", text), repr(text)
        codes.add(int(float(text)))
        subject, seq, frame = path.name.split("_")[:3]
        seq_dir = root / "cohn-kanade-images" / subject / seq
        assert int(frame) == max(sequences[seq_dir])  # the label belongs to the last (peak) frame
    assert codes == set(range(1, 8))  # contempt (2) included; CK+ has no neutral sequences
    assert 0 < len(emotion) < len(sequences)  # only part of the sequences are labelled


def test_ckplus_sequences_start_neutral_and_reach_an_apex(tiny_corpus):
    root = tiny_corpus / "ckplus" / "cohn-kanade-images"
    seq = sorted(p for p in root.glob("S*/*") if p.is_dir())[0]
    frames = sorted(seq.glob("*.png"))
    first, second, last = (np.asarray(Image.open(p), np.float32) for p in (frames[0], frames[1], frames[-1]))
    assert np.abs(first - second).mean() < np.abs(first - last).mean()


# ---------------------------------------------------------------- AFEW


def test_afew_layout_and_audio(tiny_corpus):
    root = tiny_corpus / "afew"
    for split in ("Train", "Val"):
        folders = sorted(p.name for p in (root / split).iterdir())
        assert folders == sorted(AFEW_FOLDERS)
    clips = sorted(root.rglob("*.avi"))
    assert len(clips) == 7 * 3
    assert all(re.fullmatch(r"\d{9}", c.stem) for c in clips)
    info = probe(clips[0])
    assert info.has_video and info.has_audio
    assert info.width == 96 and info.height == 72  # whole frames, not face crops
    audio = read_audio(clips[0], 16000)
    assert audio.size > 0.5 * info.duration_s * 16000 and np.abs(audio).max() > 0.01
    for clip in clips[:4]:  # the header's frame count is what decodes (it once said one more, for AVI + MP3)
        assert probe(clip).frames == len(read_video(clip))


# ---------------------------------------------------------------- Aff-Wild2


def annotation_files(root: Path) -> dict[str, Path]:
    ann = root / "EXPR_Recognition_Challenge"
    return {p.stem: p for p in ann.glob("*_Set/*.txt")}


def test_affwild2_annotations(tiny_corpus):
    root = tiny_corpus / "affwild2"
    files = annotation_files(root)
    assert {p.parent.name for p in files.values()} == {"Train_Set", "Validation_Set"}
    all_labels = []
    one_longer = 0
    for name, path in files.items():
        lines = path.read_text().splitlines()
        assert lines[0] == AFFWILD2_HEADER
        values = [int(v) for v in lines[1:]]
        assert set(values) <= set(range(-1, 8))
        video = name.removesuffix("_left").removesuffix("_right")
        frames = probe(root / "videos" / f"{video}.mp4").frames
        assert len(values) in (frames, frames + 1), name
        one_longer += len(values) == frames + 1
        all_labels += values
        crops = root / "cropped_aligned" / name
        assert crops.is_dir()
    assert one_longer >= 1
    labels = np.array(all_labels)
    assert (labels == UNLABELLED).sum() > 0
    # -1 comes in runs, not isolated frames
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, labels == UNLABELLED, 0])))[::2]
    assert runs.max() >= 3
    present = set(labels[labels >= 0].tolist())
    assert present == set(range(8))


def test_affwild2_crops_missing_crops_and_pairs(tiny_corpus):
    root = tiny_corpus / "affwild2"
    files = annotation_files(root)
    missing = 0
    for name, path in files.items():
        values = [int(v) for v in path.read_text().splitlines()[1:]]
        crops = root / "cropped_aligned" / name
        names = sorted(p.name for p in crops.iterdir())
        assert all(re.fullmatch(r"\d{5}\.jpg", n) for n in names)
        assert names[0] in ("00001.jpg", "00002.jpg")  # 1-based
        numbers = {int(n[:5]) for n in names}
        missing += sum(
            1 for i, v in enumerate(values, start=1) if v >= 0 and i not in numbers and i <= max(numbers)
        )
    assert missing >= 1
    with Image.open(next((root / "cropped_aligned").rglob("*.jpg"))) as crop:
        assert crop.size == (48, 48) and crop.mode == "RGB"
    left = [n for n in files if n.endswith("_left")]
    assert left, "at least one two-person video"
    for name in left:
        video = name.removesuffix("_left")
        assert f"{video}_right" in files
        assert (root / "videos" / f"{video}.mp4").is_file()
        assert not (root / "videos" / f"{name}.mp4").exists()  # the pair shares one video and audio
        assert probe(root / "videos" / f"{video}.mp4").has_audio


def test_affwild2_names_and_test_list(tiny_corpus):
    root = tiny_corpus / "affwild2"
    videos = [p.stem for p in (root / "videos").glob("*.mp4")]
    assert any(re.fullmatch(r"\d+-30-\d+x\d+", v) for v in videos)
    assert any(re.fullmatch(r"video\d+", v) for v in videos)
    test = (root / "Expression_Recognition_Challenge_test_set_release.txt").read_text().split()
    assert test and all((root / "cropped_aligned" / v).is_dir() for v in test)
    assert not set(test) & set(annotation_files(root))


def test_class_shares_follow_aff_wild2(tiny_corpus):
    # the demo preset's training split: Neutral/Other/Happiness common, Anger/Disgust/Fear rare
    info = json.loads((tiny_corpus / CORPUS_INFO).read_text())
    assert info["preset"] == "tiny"
    cfg = preset("demo")
    from expr_common.synth import affwild2

    jobs = affwild2.plan(cfg.affwild2, np.random.default_rng([0, 0]), 0)
    labels = np.concatenate([t.labels for j in jobs if j.split == "train" for t in j.tracks])
    shares = np.bincount(labels, minlength=8) / len(labels)
    common = shares[[0, 4, 7]].min()
    rare = shares[[1, 2, 3]].max()
    assert rare < common


# ---------------------------------------------------------------- manifests and sheet


@pytest.mark.parametrize("dataset", ["ckplus", "afew", "affwild2"])
def test_manifests_point_at_real_files(tiny_corpus, dataset):
    root = tiny_corpus / dataset
    with (root / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and tuple(rows[0]) == MANIFEST_COLUMNS
    ids = [r["sample_id"] for r in rows]
    assert len(ids) == len(set(ids))
    for row in rows:
        assert (root / row["frames"]).is_file()
        assert not row["audio"] or (root / row["audio"]).is_file()
        assert row["label"] in CLASS_NAMES and row["split"] in ("train", "val") and row["domain"] == dataset
    if dataset == "afew":
        assert all(r["audio"] for r in rows)


def test_contact_sheet_and_summary(tiny_corpus):
    with Image.open(tiny_corpus / CONTACT_SHEET) as sheet:
        assert sheet.size[0] > 200 and sheet.size[1] > 600
    info = json.loads((tiny_corpus / CORPUS_INFO).read_text())
    # the summary's Aff-Wild2 counts equal the annotation files'
    counted = {
        s: sum(v for k, v in t.items() if k != "unlabelled")
        for s, t in info["counts"]["affwild2"].items()
        if s != "test"
    }
    files = annotation_files(tiny_corpus / "affwild2")
    for split, folder in (("train", "Train_Set"), ("val", "Validation_Set")):
        total = 0
        for path in files.values():
            if path.parent.name == folder:
                values = [int(v) for v in path.read_text().splitlines()[1:]]
                video = path.stem.removesuffix("_left").removesuffix("_right")
                frames = probe(tiny_corpus / "affwild2" / "videos" / f"{video}.mp4").frames
                total += sum(v >= 0 for v in values[:frames])
        assert counted[split] == total


def test_cli_synth_and_override_errors(tmp_path, capsys):
    from expr_common.cli import main

    assert main(["synth", "--out", str(tmp_path / "c"), "--preset", "tiny", "--set", "affwild2.fps=x"]) == 2
    assert "affwild2.fps" in capsys.readouterr().err
    assert (
        main(
            [
                "synth",
                "--out",
                str(tmp_path / "c"),
                "--preset",
                "tiny",
                "--set",
                "ckplus.subjects=2",
                "--set",
                "afew.val_per_class=0",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "synthetic corpus 'tiny'" in out and "Aff-Wild2 tracks" in out
    assert len(list((tmp_path / "c" / "ckplus" / "cohn-kanade-images").iterdir())) == 2


def test_cli_reuse_keeps_a_matching_corpus_and_rebuilds_a_different_one(tmp_path, capsys):
    from expr_common.cli import main

    args = [
        "synth",
        "--out",
        str(tmp_path / "c"),
        "--preset",
        "tiny",
        "--set",
        "ckplus.subjects=2",
        "--set",
        "afew.val_per_class=0",
        "--workers",
        "1",
    ]
    assert main(args) == 0
    marker = tmp_path / "c" / "marker.txt"
    marker.write_text("still here")
    capsys.readouterr()
    assert main(args + ["--reuse"]) == 0
    assert "reused" in capsys.readouterr().out and marker.exists()
    assert main(args + ["--reuse", "--seed", "5"]) == 0  # other settings: rebuilt
    assert "reused" not in capsys.readouterr().out and not marker.exists()


def test_affwild2_crops_are_tight_aligned_faces(tmp_path):
    """With crop_zoom the crop is the centre of the face box, enlarged: it matches the centre of an
    unzoomed crop scaled up far better than the unzoomed crop itself (same seed, same draws)."""
    from dataclasses import replace

    from expr_common.synth import affwild2

    spec = preset("tiny").affwild2
    with pytest.raises(ValueError, match="crop_zoom"):
        replace(spec, crop_zoom=0.9)
    crops = {}
    for zoom in (1.0, 1.5):
        zoomed = replace(spec, crop_zoom=zoom)
        job = affwild2.plan(zoomed, np.random.default_rng(0), 0)[1]
        root = tmp_path / str(zoom)
        affwild2.render_video(job, root, zoomed)
        track = job.tracks[0]
        frame = next(i for i, m in enumerate(track.missing) if not m)
        path = root / affwild2.CROPS_DIR / track.name / f"{frame + 1:05d}.jpg"
        crops[zoom] = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255
    size = spec.crop_size
    assert crops[1.5].shape == (size, size, 3)
    inner = int(round(size / 1.5))
    lo = (size - inner) // 2
    centre = Image.fromarray((crops[1.0][lo : lo + inner, lo : lo + inner] * 255).astype(np.uint8))
    enlarged = np.asarray(centre.resize((size, size), Image.BILINEAR), np.float32) / 255
    assert np.abs(crops[1.5] - enlarged).mean() < 0.5 * np.abs(crops[1.5] - crops[1.0]).mean()
