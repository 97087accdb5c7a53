"""Decode-side bad input: each problem skips (or degrades) only what it must, and is counted by reason."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from expr_common import cli
from expr_common.config import from_dict
from expr_common.data import prepare as prepare_module
from expr_common.data.config import DataConfig
from expr_common.data.dataset import CachedClips
from expr_common.data.prepare import PrepareError, prepare
from expr_common.media import write_video

HEADER = ("sample_id", "frames", "audio", "label", "split", "subject", "domain")


def _video(path: Path, seed: int, audio: bool = True, frames: int = 24) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (frames, 32, 32, 3), dtype=np.uint8)
    sound = (rng.standard_normal(frames * 2000) * 0.2).astype(np.float32) if audio else None
    return write_video(path, pixels, 8.0, sound, sample_rate=16000)


def _manifest(root: Path, rows: list[tuple]) -> Path:
    with (root / "manifest.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([HEADER, *rows])
    return root


def _config(root: Path) -> DataConfig:
    data = {
        "name": "bad",
        "sources": [{"name": "m", "format": "manifest", "root": str(root), "faces": "crops"}],
        "preprocess": {"frames": 2, "image_size": 16, "window_seconds": 1.0, "n_mels": 16},
        "cache": {"workers": 1},
    }
    return from_dict(data, DataConfig)


@pytest.fixture
def bad_dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    root.mkdir()
    good = _video(root / "good.avi", 0)
    _video(root / "silent.avi", 1, audio=False)
    (root / "noise.avi").write_bytes(np.random.default_rng(2).bytes(5000))  # random bytes
    mp4 = _video(root / "whole.mp4", 3).read_bytes()
    (root / "cut.mp4").write_bytes(mp4[: len(mp4) * 6 // 10])  # truncated: its index (moov) is gone
    (root / "cut.avi").write_bytes(good.read_bytes()[: good.stat().st_size * 3 // 10])  # decodes ~1/3
    clip = root / "clip"
    clip.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 20, 3), 60 * i + 30, np.uint8)).save(clip / f"{i}.jpg")
    (clip / "2.jpg").write_bytes(b"\xff\xd8 not really a jpeg")  # unreadable, and sampled (K=2 of 3: 0, 2)
    dead = root / "dead"
    dead.mkdir()
    for i in range(2):
        (dead / f"{i}.jpg").write_bytes(b"garbage")
    rows = [
        ("good", "good.avi", "good.avi", "Happiness", "train", "a", "afew"),
        ("silent", "silent.avi", "silent.avi", "Sadness", "train", "b", "afew"),
        ("noise", "noise.avi", "noise.avi", "Fear", "train", "c", "afew"),
        ("cut_mp4", "cut.mp4", "cut.mp4", "Anger", "train", "d", "afew"),
        ("cut_avi", "cut.avi", "cut.avi", "Anger", "train", "e", "afew"),
        ("clip", "clip", "", "Disgust", "val", "f", "other"),
        ("dead", "dead", "", "Surprise", "val", "g", "other"),
    ]
    return _manifest(root, rows)


def test_each_bad_input_is_skipped_or_degraded_and_counted(bad_dataset, tmp_path, monkeypatch):
    seen: list[str] = []
    monkeypatch.setattr(prepare_module.log, "warning", lambda message, *args: seen.append(message))
    summary = prepare(_config(bad_dataset), tmp_path / "cache")
    reasons = summary.skipped["m"]
    assert reasons["unreadable video"] == 2  # random bytes, truncated mp4
    assert reasons["truncated video"] == 1  # the avi that decodes a third of its frames
    assert reasons["no audio track (has_audio=False)"] == 1
    assert reasons["unreadable image (frame)"] == 3  # one in "clip", two in "dead"
    assert reasons["clip without readable frame"] == 1  # "dead"
    assert summary.samples == 3  # good, silent, clip: the others prepared despite the bad ones
    assert any("noise.avi" in m for m in seen) and any("cut.avi" in m for m in seen)

    samples = CachedClips(tmp_path / "cache")
    by_id = {samples.entries[i]["id"]: samples[i] for i in range(len(samples))}
    assert set(by_id) == {"good", "silent", "clip"}
    assert by_id["good"]["has_audio"] and by_id["good"]["audio"].abs().sum() > 0
    assert not by_id["silent"]["has_audio"] and torch.count_nonzero(by_id["silent"]["audio"]) == 0
    assert by_id["silent"]["has_video"] and by_id["silent"]["video"].float().std() > 10
    # "clip": frames 0 and 2 are sampled; 2 is unreadable, so its neighbour 1 stands in (pixels 30, 90).
    clip = by_id["clip"]
    assert clip["frame_index"].tolist() == [0, 1]
    assert [round(float(f.float().mean()) / 10) for f in clip["video"]] == [3, 9]


def test_an_unreadable_sampled_frame_is_replaced_and_counted(tmp_path):
    root = tmp_path / "ds"
    (root / "clip").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((20, 20, 3), 40 * i, np.uint8)).save(root / "clip" / f"{i}.png")
    (root / "clip" / "3.png").write_bytes(b"not a png")  # sampled (K=2 of 4 -> frames 1 and 3)
    _manifest(root, [("c", "clip", "", "Fear", "train", "s", "other")])
    summary = prepare(_config(root), tmp_path / "cache")
    assert summary.samples == 1 and summary.frames_replaced == 1
    assert summary.skipped["m"]["unreadable image (frame)"] == 1
    item = CachedClips(tmp_path / "cache")[0]
    assert item["frame_index"].tolist() == [1, 2]  # frame 2 stands in for the unreadable 3
    assert [round(float(f.float().mean()) / 10) for f in item["video"]] == [4, 8]


def test_nothing_usable_is_a_clear_error(tmp_path, capsys):
    root = tmp_path / "ds"
    root.mkdir()
    (root / "a.avi").write_bytes(b"\x00" * 3000)
    (root / "b.jpg").write_bytes(b"\x00" * 30)
    _manifest(
        root, [("a", "a.avi", "", "Fear", "train", "s", "afew"), ("b", "b.jpg", "", "Fear", "train", "t", "")]
    )
    with pytest.raises(PrepareError, match="no samples prepared.*unreadable video"):
        prepare(_config(root), tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
    config = tmp_path / "c.yaml"
    config.write_text(f"sources:\n  - {{name: m, format: manifest, root: {root}}}\ncache: {{workers: 1}}\n")
    assert cli.main(["prepare", "--config", str(config), "--out", str(tmp_path / "cache")]) == 2
    assert "no samples prepared" in capsys.readouterr().err
