"""FID/KID arithmetic, per-class FID, the small-N rule, the real-feature cache and the sources; no network and
no Inception: a stand-in extractor turns pixels into features, so these tests take milliseconds."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_fid.fid_score import calculate_frechet_distance

import gan_aug
from expr_common.data import dataset as cache_format
from expr_common.media import write_video
from gan_aug.fid.features import Features
from gan_aug.fid.metrics import FidError, fid_from_features, kid_from_features
from gan_aug.fid.report import FidOptions, compute_report, per_class_fid
from gan_aug.fid.sources import ImageItem, ImageReader, open_source


class CountingExtractor:
    """Stands in for FeatureExtractor: features from pixels through a fixed projection; counts images."""

    weights = Path("stand-in")
    fingerprint = "stand-in"

    def __init__(self) -> None:
        self.images_seen = 0
        self.projection = np.random.default_rng(0).standard_normal((3 * 8 * 8, 32)).astype(np.float32)

    def features_of_items(self, items: Sequence[ImageItem], desc: str = "") -> np.ndarray:
        self.images_seen += len(items)
        arrays = ImageReader().load(items)
        small = [np.asarray(Image.fromarray(a).resize((8, 8)), np.float32).reshape(-1) / 255 for a in arrays]
        return np.stack(small) @ self.projection


def _folder(path: Path, count: int, seed: int, mean: int = 128) -> Path:
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = np.clip(rng.normal(mean, 40, (16, 16, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path / f"{i:03d}.png")
    return path


@pytest.mark.parametrize("n, d", [(300, 16), (40, 64)])  # N > d (eigh route), N < d (SVD route, singular)
def test_fid_frechet_equals_pytorch_fid(n, d):
    rng = np.random.default_rng(0)
    a = np.abs(rng.standard_normal((n, d))).astype(np.float32)  # pool3 features are non-negative too
    b = (np.abs(rng.standard_normal((n, d))) * 1.3 + 0.2).astype(np.float32)
    stats = [(x.astype(np.float64).mean(0), np.cov(x.astype(np.float64), rowvar=False)) for x in (a, b)]
    expected = calculate_frechet_distance(*stats[0], *stats[1])
    assert expected > 1.0  # the shifted, wider set is far away: the comparison is not 0 == 0
    assert fid_from_features(a, b, method="pytorch-fid") == expected  # pytorch-fid's function, called as is
    assert fid_from_features(a, b) == pytest.approx(expected, rel=1e-6)  # the fast route: same value
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-9)


def test_fid_kid_zero_for_same_distribution_positive_for_different():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((400, 64)), rng.standard_normal((400, 64))
    shifted = rng.standard_normal((400, 64)) + 0.5
    same = kid_from_features(a, b, subsets=50, subset_size=200)
    different = kid_from_features(a, shifted, subsets=50, subset_size=200)
    assert abs(same["mean"]) < 3 * same["std"] + 1e-3  # unbiased: 0 within its spread
    assert different["mean"] > 10 * abs(same["mean"]) and different["mean"] > 5 * different["std"]
    assert same["subset_size"] == 200 and same["subsets"] == 50
    assert kid_from_features(a, b[:30])["subset_size"] == 30  # min(1000, n): usable at small n


def test_fid_per_class_averages_class_values():
    rng = np.random.default_rng(2)
    labels = np.repeat([1, 2, 3], 40)
    real = Features(rng.standard_normal((120, 8)).astype(np.float32), labels)
    fake_feats = rng.standard_normal((120, 8)).astype(np.float32) + (labels[:, None] == 2) * 2.0
    fake = Features(fake_feats, labels)
    result = per_class_fid(real, fake)
    classes = result["classes"]
    assert set(classes) == {"Anger", "Disgust", "Fear"} and all(c["n"] == 40 for c in classes.values())
    for c in classes.values():
        mask = labels == c["label"]
        assert c["fid"] == pytest.approx(fid_from_features(real.features[mask], fake.features[mask]))
    assert result["intra_fid"] == pytest.approx(np.mean([c["fid"] for c in classes.values()]))
    assert classes["Disgust"]["fid"] > 5 * classes["Anger"]["fid"]  # the shifted class stands out


def test_fid_small_n_refused_unless_allowed(tmp_path):
    real, fake = _folder(tmp_path / "real", 6, 0), _folder(tmp_path / "fake", 9, 1, mean=90)
    with pytest.raises(FidError, match="--allow-small-n"):
        compute_report(real, fake, extractor=CountingExtractor())
    report = compute_report(real, fake, FidOptions(allow_small_n=True, kid=True), CountingExtractor())
    assert report["n"] == 6 and report["fake"]["available"] == 9  # equal N on both sides
    assert any("N=6" in w and "biased" in w for w in report["warnings"])
    assert report["fid"] > 0 and report["kid"]["subset_size"] == 6
    assert not any("--n" in w for w in report["warnings"])
    asked = compute_report(real, fake, FidOptions(n=1000, allow_small_n=True), CountingExtractor())
    assert asked["n"] == 6 and any("--n 1000" in w and "N = 6" in w for w in asked["warnings"])


def test_fid_real_features_cached(tmp_path):
    real, fake = _folder(tmp_path / "real", 10, 0), _folder(tmp_path / "fake", 10, 1, mean=90)
    extractor = CountingExtractor()
    options = FidOptions(allow_small_n=True, cache_dir=tmp_path / "cache")
    first = compute_report(real, fake, options, extractor)
    assert extractor.images_seen == 20 and first["real_features_cache"] == "miss"
    second = compute_report(real, fake, options, extractor)
    assert extractor.images_seen == 30 and second["real_features_cache"] == "hit"  # only the fakes again
    assert second["fid"] == pytest.approx(first["fid"])
    with_n = compute_report(real, fake, replace(options, n=8), extractor)
    assert with_n["real_features_cache"] == "miss"  # N is in the key
    touched = real / "003.png"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    assert compute_report(real, fake, options, extractor)["real_features_cache"] == "miss"  # data changed


def test_fid_per_class_needs_labels(tmp_path):
    real, fake = _folder(tmp_path / "real", 4, 0), _folder(tmp_path / "fake", 4, 1)
    with pytest.raises(FidError, match="labels"):
        compute_report(real, fake, FidOptions(per_class=True, allow_small_n=True), CountingExtractor())


def _manifest(root: Path) -> Path:
    """Rows of every frames kind: an image, a folder of images, a video; labels by index and by name."""
    _folder(root / "clip", 3, 5)
    _folder(root / "single", 1, 6)
    frames = np.random.default_rng(0).integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    write_video(root / "v.mp4", frames, fps=10)
    rows = [
        ["a", "single/000.png", "", "1", "train", "s1", "affwild2"],
        ["b", "clip", "", "Fear", "train", "s2", "affwild2"],
        ["c", "v.mp4", "", "4", "val", "s3", "afew"],
    ]
    with (root / "manifest.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(
            [["sample_id", "frames", "audio", "label", "split", "subject", "domain"], *rows]
        )
    return root / "manifest.csv"


def test_fid_manifest_source_lists_images_folders_and_video_frames(tmp_path):
    source = open_source(_manifest(tmp_path))
    assert source.kind == "manifest" and len(source.items) == 1 + 3 + 4
    assert [i.label for i in source.items] == [1, 3, 3, 3, 4, 4, 4, 4]
    arrays = ImageReader().load(source.items)
    assert all(a.shape == (16, 16, 3) and a.dtype == np.uint8 for a in arrays)
    assert len(open_source(tmp_path, split="val").items) == 4
    assert len(open_source(tmp_path, domain="affwild2").items) == 4
    with pytest.raises(FidError, match="allow-small-n"):
        compute_report(tmp_path, tmp_path, FidOptions(per_class=True), CountingExtractor())
    options = FidOptions(per_class=True, allow_small_n=True)
    per_class = compute_report(tmp_path, tmp_path, options, CountingExtractor())["per_class"]
    assert {k: c["n"] for k, c in per_class["classes"].items()} == {"Fear": 3, "Happiness": 4}
    assert "Anger" in per_class["skipped"]  # one image: no covariance


def test_fid_cache_source_reads_prepared_crops(tmp_path):
    writer = cache_format.ShardWriter(tmp_path / "cache", shard_size=2)
    video = np.random.default_rng(0).integers(0, 255, (3, 2, 3, 16, 16), dtype=np.uint8)  # 3 samples, K=2
    for i in range(3):
        meta = {"id": f"s{i}", "ref_id": f"r{i}", "source": "x", "dataset": "manifest", "subject": "p"}
        meta |= {"domain": "affwild2" if i < 2 else "afew", "split": "train"}
        sample = {"video": video[i], "audio": torch.zeros(1, 4, 4), "label": i, "has_audio": False}
        sample |= {"has_video": True, "frame_labels": [i, 5], "frame_index": [0, 1], "span": [0, 2]}
        writer.add(sample | {"span_labels": [i, 5], "meta": meta})
    entries, shards = writer.close()
    cache_format.write_index(
        tmp_path / "cache", {"config_hash": "x", "config": {}, "samples": entries, "shards": shards}
    )
    source = open_source(tmp_path / "cache", domain="affwild2")
    assert source.kind == "cache" and [i.label for i in source.items] == [0, 5, 1, 5]
    arrays = ImageReader().load(source.items)
    assert np.array_equal(arrays[3], video[1, 1].transpose(1, 2, 0))  # HWC of sample 1's second crop


def test_the_library_fid_of_two_sets_of_faces(weights) -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (12, 3, 40, 40), dtype=np.uint8)
    flat = np.full((12, 3, 40, 40), 128, np.uint8) + rng.integers(0, 8, (12, 1, 1, 1), dtype=np.uint8)
    assert gan_aug.compute_fid(noise, noise, weights=weights) < 1e-3
    assert gan_aug.compute_fid(noise, flat, weights=weights) > 50.0
