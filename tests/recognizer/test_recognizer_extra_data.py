"""--with-synthetic / --with-source-real: the per-class policy, the flags, and the training mix."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from expr_common.data.dataset import CachedClips
from expr_common.labels import CLASS_NAMES
from expr_common.paths import repo_root
from recognizer.extra_data import select_extra, with_extra_flags
from recognizer.run_config import ExtraTrainData, load_recognizer_config

TINY = str(repo_root() / "configs" / "recognizer" / "tiny.yaml")


def test_policy_fills_rare_classes_to_the_target_share_under_the_ratio_cap():
    real = torch.tensor([10, 2, 0, 5, 8, 1, 0, 3])
    extra = torch.tensor([c for c in range(8) for _ in range(6)])  # 6 extra samples of every class
    policy = ExtraTrainData(manifest="x", target_share=0.5, max_ratio=1.0)
    rows, table = select_extra(real, extra, policy, seed=0)
    used = {row["class"]: row["used"] for row in table}
    # target = ceil(0.5 * 10) = 5 per class; cap = 1.0 * max(real, 1)
    assert used == {
        "Neutral": 0,  # already above the target
        "Anger": 2,  # needs 3, capped at 2 x 1.0
        "Disgust": 1,  # no real sample: capped as if it had one
        "Fear": 0,  # exactly at the target
        "Happiness": 0,
        "Sadness": 1,
        "Surprise": 1,
        "Other": 2,
    }
    assert len(rows) == sum(used.values()) and len(set(rows.tolist())) == len(rows)
    picked_classes = torch.bincount(extra[rows], minlength=8).tolist()
    assert picked_classes == [used[name] for name in CLASS_NAMES]
    again, _ = select_extra(real, extra, policy, seed=0)
    other, _ = select_extra(
        real, extra, ExtraTrainData(manifest="x", target_share=0.5, max_ratio=5.0), seed=1
    )
    assert torch.equal(rows, again)  # the same seed admits the same samples
    assert len(other) > len(rows)  # a looser cap admits more
    everything, _ = select_extra(
        real, extra, ExtraTrainData(manifest="x", target_share=None, max_ratio=None), 0
    )
    assert torch.equal(everything, torch.arange(len(extra)))


def test_flags_add_the_policies_and_refuse_what_cannot_work():
    cfg = load_recognizer_config(TINY)
    with pytest.raises(ValueError, match="--with-synthetic needs"):
        with_extra_flags(cfg, synthetic=True)
    with pytest.raises(ValueError, match="needs --with-synthetic"):
        with_extra_flags(cfg, synthetic_dir="somewhere")
    both = with_extra_flags(cfg, synthetic=True, synthetic_dir="gen", source_real=True)
    synthetic, source_real = both.extra_train
    assert synthetic.name == "synthetic" and synthetic.manifest == "gen" and synthetic.data is None
    assert synthetic.weight == cfg.extra_policies.synthetic.weight
    assert source_real.data == cfg.data and source_real.sources == ["afew", "ckplus"]
    assert with_extra_flags(cfg).extra_train == []
    with pytest.raises(ValueError, match="exactly one of data and manifest"):
        ExtraTrainData(name="bad")


def _synthetic_folder(root, size: int, per_class: int = 3):
    """A `gan-aug generate`-like folder: one PNG face per sample, manifest.csv with domain synthetic."""
    rng = np.random.default_rng(0)
    rows = []
    for c, name in enumerate(CLASS_NAMES):
        for k in range(per_class):
            path = root / name / f"{k:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
            rows.append(
                {
                    "sample_id": f"syn_{name}_{k}",
                    "frames": f"{name}/{k:03d}.png",
                    "audio": "",
                    "label": str(c),
                    "split": "train",
                    "subject": "",
                    "domain": "synthetic",
                }
            )
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_synthetic_samples_join_training_only_video_only_and_weighted(recognizer_cache_root, tmp_path):
    from recognizer.trainer import load_data

    base = load_recognizer_config(TINY, [f"data_overrides=[cache.root={recognizer_cache_root}]"])
    plain = load_data(base, None)
    size = plain.train.preprocess.image_size
    folder = _synthetic_folder(tmp_path / "gen", size)
    cfg = with_extra_flags(base, synthetic=True, synthetic_dir=str(folder))
    data = load_data(cfg, None)
    (summary,) = data.extras
    used = summary["used"]
    assert used > 0 and len(data.train) == len(plain.train) + used
    assert len(data.val) == len(plain.val)  # never in validation
    extra_cache = CachedClips(summary["cache"])
    assert (
        not (folder / "cache").exists()
        and Path(summary["cache"]).parent == Path(recognizer_cache_root).parent
    )
    assert extra_cache.preprocess == plain.train.preprocess  # the main config's K, size and mel settings
    items = [data.train[i] for i in range(len(plain.train), len(data.train))]
    assert all(not bool(item["has_audio"]) and bool(item["has_video"]) for item in items)
    assert all(float(item["weight"]) == cfg.extra_policies.synthetic.weight for item in items)
    assert all(float(data.train[i]["weight"]) == 1.0 for i in range(3))
    counts = data.train.class_counts()
    real = plain.train.class_counts()
    assert torch.equal(counts - real, torch.tensor([row["used"] for row in summary["per_class"]]))


def test_augmented_copies_repeat_the_training_split_as_the_synthetic_policy_would(recognizer_cache_root):
    """--with-augmented-copies (the classic-augmentation control): the main training split's own samples,
    admitted class by class under the synthetic policy, each drawn through the training augmentation."""
    from recognizer.trainer import load_data

    base = load_recognizer_config(TINY, [f"data_overrides=[cache.root={recognizer_cache_root}]"])
    cfg = with_extra_flags(base, augmented=True)
    (copies,) = cfg.extra_train
    policy = cfg.extra_policies.synthetic
    assert (
        copies.name == "augmented" and copies.data == cfg.data and copies.sources == cfg.train.train_sources
    )
    assert (copies.target_share, copies.max_ratio, copies.weight) == (
        policy.target_share, policy.max_ratio, policy.weight,
    )  # fmt: skip
    plain, data = load_data(base, None), load_data(cfg, None)
    (summary,) = data.extras
    real = plain.train.class_counts()
    expected, _ = select_extra(real, plain.train.labels, copies, cfg.train.seed)
    assert summary["used"] == len(expected) > 0 and len(data.train) == len(plain.train) + len(expected)
    assert Path(summary["cache"]) == Path(plain.train.root)  # the same cache: nothing prepared again
    first = len(plain.train)
    copied = data.train.parts[1][1][0]  # the first admitted copy is this row of the training split
    item, original = data.train[first], plain.train[int(copied)]
    assert int(item["label"]) == int(original["label"]) and float(item["weight"]) == policy.weight
