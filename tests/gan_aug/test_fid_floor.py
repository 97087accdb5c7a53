"""The real-vs-real floor of `gan-aug fid --floor`: disjoint, stratified, grouped, deterministic halves; a
floor report with the main report's keys; and on the tiny corpus a floor below the FID of noise. A stand-in
extractor turns pixels into features (no Inception weights, no network)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from expr_common.data.config import load_data_config
from expr_common.data.prepare import prepare
from expr_common.labels import CLASS_NAMES, NUM_CLASSES
from expr_common.paths import repo_root
from gan_aug.cli import main
from gan_aug.fid import command as fid_command
from gan_aug.fid.floor import floor_report, split_halves
from gan_aug.fid.metrics import FidError
from gan_aug.fid.report import FidOptions, report_with_features
from gan_aug.fid.sources import ImageItem, ImageReader, open_source

TINY_DATA = repo_root() / "configs" / "data" / "synthetic_tiny.yaml"


class StandInExtractor:
    """Stands in for FeatureExtractor: 8x8 pixels through a fixed random projection."""

    weights = Path("stand-in")
    fingerprint = "stand-in"

    def __init__(self, *args, **kwargs) -> None:
        self.projection = np.random.default_rng(0).standard_normal((3 * 8 * 8, 32)).astype(np.float32)

    def features_of_items(self, items: Sequence[ImageItem], desc: str = "") -> np.ndarray:
        arrays = ImageReader().load(items)
        small = [np.asarray(Image.fromarray(a).resize((8, 8)), np.float32).reshape(-1) / 255 for a in arrays]
        return np.stack(small) @ self.projection


@pytest.fixture(scope="session")
def tiny_cache(tiny_corpus: Path, data_dir: Path) -> Path:
    """The tiny corpus prepared once (the path and config the GAN tests use, so a session builds it once)."""
    out = data_dir / "cache" / "gan_synthetic_tiny"
    return Path(prepare(load_data_config(TINY_DATA, [f"cache.root={out}"])).path)


def _items(videos: int = 40, per_subject: int = 4, seed: int = 0) -> list[ImageItem]:
    """Aff-Wild2-like listing: videos of 5-15 frames, each mostly one class with a few frames of another
    (and some unlabelled), several videos per subject."""
    rng = np.random.default_rng(seed)
    items = []
    for v in range(videos):
        main, other = rng.integers(NUM_CLASSES, size=2)
        for f in range(int(rng.integers(5, 16))):
            label = int(main if f % 4 else other) if f != 3 else -1
            items.append(ImageItem(Path(f"v{v}.mp4"), label, (f,), f"v{v}", f"s{v // per_subject}"))
    return items


def _class_counts(items: Sequence[ImageItem]) -> np.ndarray:
    return np.bincount([i.label for i in items if i.label >= 0], minlength=NUM_CLASSES)


def test_floor_halves_disjoint_grouped_stratified_deterministic():
    items = _items()
    a, b, info = split_halves(items, seed=3)
    keys = [(i.video, i.index) for i in items]
    assert not {(i.video, i.index) for i in a} & {(i.video, i.index) for i in b}  # disjoint ...
    assert sorted(keys) == sorted((i.video, i.index) for i in a + b)  # ... and together all of them
    assert [i for i in items if i in set(a)] == a  # listing order kept
    assert info["by"] == "subject" and not {i.subject for i in a} & {i.subject for i in b}
    assert info["images"] == {"a": len(a), "b": len(b)}
    assert sum(info["groups"].values()) == len({i.subject for i in items})
    # Stratified: every class on both sides and no class far off half, in spite of whole subjects moving.
    ca, cb = _class_counts(a), _class_counts(b)
    total = ca + cb
    assert (ca[total > 0] > 0).all() and (cb[total > 0] > 0).all()
    assert np.all(np.abs(ca - cb) <= 0.5 * total), (ca, cb)
    assert info["classes"] == {
        CLASS_NAMES[c]: {"a": int(ca[c]), "b": int(cb[c])} for c in np.flatnonzero(total)
    }

    again = split_halves(items, seed=3)
    assert again[0] == a and again[1] == b  # deterministic for a seed

    a, b, info = split_halves(items, by="video", seed=3)  # 40 videos: the greedy route (10 subjects: exact)
    assert info["by"] == "video" and not {i.video for i in a} & {i.video for i in b}
    assert np.all(np.abs(_class_counts(a) - _class_counts(b)) <= 0.5 * total)
    assert split_halves(items, by="video", seed=4)[0] != a  # another seed, another split
    a, b, info = split_halves(items, by="image", seed=3)
    assert np.abs(_class_counts(a) - _class_counts(b)).max() <= 1  # per class, within one image
    assert abs(len(a) - len(b)) <= 1 and split_halves(items, by="image", seed=4)[0] != a
    assert any("near-duplicates" in note for note in info["notes"])


def test_floor_split_unit_falls_back_and_says_why(tmp_path):
    one_folder = [ImageItem(Path(f"{i}.png"), video=".") for i in range(10)]
    a, b, info = split_halves(one_folder)  # no subjects, one "video": only images can be split
    assert info["by"] == "image" and len(a) == len(b) == 5
    assert any("subject" in n for n in info["notes"]) and any("video" in n for n in info["notes"])
    with pytest.raises(FidError, match="subject"):
        split_halves(one_folder, by="subject")
    lopsided = [ImageItem(Path("x"), 0, (i,), "big" if i < 9 else "small", "") for i in range(10)]
    assert split_halves(lopsided)[2]["by"] == "image"  # by video 9:1 is too uneven for "auto"
    with pytest.raises(FidError, match="at least 4"):
        split_halves(one_folder[:3])


def _noise_manifest(root: Path, labels: Sequence[int], size: int = 48) -> Path:
    """Blocky colour-noise images with the given labels: obviously unlike any face (8x8 blocks, so the
    stand-in's 8x8 view keeps the noise instead of averaging it to grey)."""
    rng = np.random.default_rng(1)
    root.mkdir(parents=True)
    rows = []
    for i, label in enumerate(labels):
        blocks = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        blocks.resize((size, size), Image.Resampling.NEAREST).save(root / f"{i:04d}.png")
        rows.append([f"n{i}", f"{i:04d}.png", "", str(label), "train", f"n{i}", "synthetic"])
    with (root / "manifest.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(
            [["sample_id", "frames", "audio", "label", "split", "subject", "domain"]]
        )
        csv.writer(handle).writerows(rows)
    return root


def test_floor_report_below_noise_fid_on_tiny_corpus(tiny_cache: Path, tmp_path: Path):
    real = open_source(tiny_cache, domain="affwild2")
    labels = [i.label for i in real.items if i.label >= 0]
    noise = _noise_manifest(tmp_path / "noise", labels)
    options = FidOptions(per_class=True, kid=True, allow_small_n=True, kid_subsets=20)
    options = replace(options, cache_dir=tmp_path / "cache")
    extractor = StandInExtractor()
    main_report, _, fake_features = report_with_features(real, noise, options, extractor=extractor)
    sections = floor_report(real, options, fake_features=fake_features, extractor=extractor)
    floor = sections["floor"]

    assert set(floor) == set(main_report)  # the same report, between the two halves
    assert set(floor["per_class"]) == set(main_report["per_class"]) and set(floor["kid"]) == set(
        main_report["kid"]
    )
    assert set(floor["settings"]) == set(main_report["settings"]) | {"split"}
    split = floor["settings"]["split"]
    assert split["by"] in ("subject", "video")  # tracks stay whole: no near-duplicate frames across halves
    # N of each side stated; both at the equal N the smaller half allows; the halves partition the real set.
    assert floor["real"]["n"] == floor["fake"]["n"] == floor["n"] == min(split["images"].values())
    assert floor["real"]["available"] + floor["fake"]["available"] == len(real.items)
    assert "floor half A" in floor["real"]["source"] and "floor half B" in floor["fake"]["source"]
    assert any(f"N={floor['n']} <" in w and "biased" in w for w in floor["warnings"])  # small-N warning

    assert 0 <= floor["fid"] < main_report["fid"]  # real vs real sits below real vs noise
    assert floor["kid"]["mean"] < main_report["kid"]["mean"]
    vs = sections["vs_floor"]  # against half A at one equal N: the fair comparison
    assert vs["n"] <= floor["n"] and vs["fid"]["floor"] < vs["fid"]["fake"] / 2
    assert vs["fid"]["above_floor"] == pytest.approx(vs["fid"]["fake"] - vs["fid"]["floor"])
    assert vs["kid"]["floor"]["mean"] < vs["kid"]["fake"]["mean"] and vs["warnings"]

    with pytest.raises(FidError, match="allow-small-n"):
        floor_report(real, extractor=StandInExtractor())
    # Why whole tracks matter: split by image, near-duplicate frames sit on both sides and the floor drops.
    by_image = floor_report(real, options, by="image", extractor=extractor)["floor"]
    assert by_image["fid"] < floor["fid"] / 10 and any("near-duplicates" in w for w in by_image["warnings"])


def test_floor_cli_writes_the_sections(tiny_cache: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(fid_command, "FeatureExtractor", StandInExtractor)
    out = tmp_path / "floor.json"
    common = ["fid", "--real", str(tiny_cache), "--real-domain", "affwild2", "--allow-small-n", "--no-cache"]
    assert main([*common, "--floor", "--floor-by", "video", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report) == {"floor"} and report["floor"]["settings"]["split"]["by"] == "video"
    noise = _noise_manifest(tmp_path / "noise", [0] * 30)
    assert main([*common, "--fake", str(noise), "--floor", "--out", str(out)]) == 2  # the first is kept
    assert set(json.loads(out.read_text())) == {"floor"}
    assert main([*common, "--fake", str(noise), "--floor", "--out", str(out), "--overwrite"]) == 0
    report = json.loads(out.read_text())
    assert {"fid", "floor", "vs_floor"} <= set(report) and report["floor"]["fid"] < report["fid"]
    assert main(common) == 2  # neither --fake nor --floor: a one-line error
