"""The Dataset over a prepared tiny corpus: batch shapes and masks, filters, per-frame label maps,
training-only frequency masking, the class-balanced sampler and worker loading."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from expr_common.data.config import AugmentConfig, load_data_config
from expr_common.data.dataset import CachedClips, balanced_sampler, collate, make_loader, normalize_video
from expr_common.data.prepare import prepare

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "data" / "synthetic_tiny.yaml"


@pytest.fixture(scope="module")
def tiny_cache(tiny_corpus, data_dir) -> Path:
    prepare(load_data_config(CONFIG), data_dir / "cache_tiny")  # K=4, 48 px, 1 s windows, 64 per shard
    return data_dir / "cache_tiny"


def test_batch_shapes_dtypes_and_masks(tiny_cache):
    ds = CachedClips(tiny_cache)
    batch = ds.__getitems__(list(range(len(ds))))
    n = len(ds)
    assert batch["video"].shape == (n, 4, 3, 48, 48) and batch["video"].dtype == torch.uint8
    assert batch["audio"].shape == (n, 1, 64, 101) and batch["audio"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64 and batch["has_audio"].dtype == torch.bool
    assert batch["frame_labels"].shape == (n, 4) and batch["frame_index"].shape == (n, 4)
    assert len(batch["sample_id"]) == n and torch.equal(batch["index"], torch.arange(n))
    source = [e["source"] for e in ds.entries]
    for i in range(n):
        if source[i] == "ckplus":  # CK+ has no sound: masked and zero
            assert not batch["has_audio"][i] and not batch["audio"][i].any()
        else:  # AFEW clips and Aff-Wild2 videos carry a sound track
            assert batch["has_audio"][i] and batch["audio"][i].std() > 0
    assert batch["has_video"].all()
    assert (ds.preprocess.frames, ds.preprocess.image_size, ds.preprocess.mel_steps) == (4, 48, 101)
    assert len(set(ds.entries[i]["shard"] for i in range(n))) >= 2  # exercised across shards


def test_single_items_match_the_batched_path(tiny_cache):
    ds = CachedClips(tiny_cache)
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:24].tolist()
    batched, stacked = ds.__getitems__(order), collate([ds[i] for i in order])
    for key in (
        "video",
        "audio",
        "label",
        "has_audio",
        "frame_labels",
        "frame_index",
        "span",
        "span_labels",
        "index",
    ):
        assert torch.equal(batched[key], stacked[key]), key
    assert batched["sample_id"] == stacked["sample_id"] == [ds.entries[i]["id"] for i in order]
    assert collate(batched) is batched


def test_filters(tiny_cache):
    everything = CachedClips(tiny_cache)
    val = CachedClips(tiny_cache, split="val")
    assert 0 < len(val) < len(everything) and {e["split"] for e in val.entries} == {"val"}
    two = CachedClips(tiny_cache, domain=["afew", "ckplus"])
    assert {e["domain"] for e in two.entries} == {"afew", "ckplus"}
    assert {e["source"] for e in CachedClips(tiny_cache, source="ckplus").entries} == {"ckplus"}
    labelled = CachedClips(tiny_cache, labelled_only=True)
    assert (labelled.labels >= 0).all() and len(labelled) < len(everything)  # Aff-Wild2 test windows


def test_per_frame_label_maps_match_the_annotation_files(tiny_cache, tiny_corpus):
    ds = CachedClips(tiny_cache, source="affwild2", split="train")
    checked = 0
    for i in range(len(ds)):
        item, entry = ds[i], ds.entries[i]
        lines = (
            tiny_corpus / "affwild2/EXPR_Recognition_Challenge/Train_Set" / f"{entry['ref_id']}.txt"
        ).read_text()
        labels = [int(x) for x in lines.split()[1:]]
        start, stop = item["span"].tolist()
        assert item["span_labels"].tolist() == labels[start:stop]
        assert item["frame_labels"].tolist() == [labels[f] for f in item["frame_index"].tolist()]
        assert entry["frames"] == item["frame_index"].tolist() and entry["span"] == [start, stop]
        votes = Counter(x for x in labels[start:stop] if x >= 0)  # the window's class: the majority
        assert votes[int(item["label"])] == max(votes.values())
        checked += 1
    assert checked > 10


def test_frequency_masking_only_in_training(tiny_cache):
    plain = CachedClips(tiny_cache)
    again = CachedClips(tiny_cache)
    no_video_aug = {"hflip": False, "crop_scale": 1.0, "color_jitter": 0.0}
    train = CachedClips(
        tiny_cache, train=True, augment=AugmentConfig(freq_mask_param=30, freq_masks=2, **no_video_aug)
    )
    idx = list(range(len(plain)))
    a, b, t = plain.__getitems__(idx), again.__getitems__(idx), train.__getitems__(idx)
    assert torch.equal(a["audio"], b["audio"])  # evaluation: the cache as it is, every time
    has = a["has_audio"]
    assert not torch.equal(t["audio"][has], a["audio"][has])
    assert torch.equal(t["audio"][~has], a["audio"][~has])  # no sound, nothing to mask
    assert torch.equal(t["video"], a["video"])
    off = CachedClips(tiny_cache, train=True, augment=AugmentConfig(freq_masks=0))
    assert torch.equal(off.__getitems__(idx)["audio"], a["audio"])


def test_clip_augmentation_draws_once_per_clip_and_only_in_training(tiny_cache):
    from expr_common.data.video_augment import ClipAugment

    plain = CachedClips(tiny_cache)
    idx = list(range(len(plain)))
    a = plain.__getitems__(idx)
    flip_only = AugmentConfig(hflip=True, crop_scale=1.0, color_jitter=0.0)
    torch.manual_seed(0)
    t = CachedClips(tiny_cache, train=True, augment=flip_only).__getitems__(idx)
    flipped = a["video"].flip(-1)
    for k in range(len(idx)):
        # Every clip is either untouched or flipped as a whole: one draw for all of its K frames.
        assert torch.equal(t["video"][k], a["video"][k]) or torch.equal(t["video"][k], flipped[k])
    was_flipped = [torch.equal(t["video"][k], flipped[k]) for k in range(len(idx))]
    assert 0 < sum(was_flipped) < len(idx)
    clip = a["video"][0]
    jitter = ClipAugment(AugmentConfig(hflip=False, crop_scale=0.6, color_jitter=0.4))
    out = jitter(clip)
    assert out.shape == clip.shape and out.dtype == torch.uint8
    assert not torch.equal(out, clip)
    off = ClipAugment(AugmentConfig(hflip=False, crop_scale=1.0, color_jitter=0.0))
    assert not off.active and off(clip) is clip
    with pytest.raises(ValueError, match="crop_scale"):
        AugmentConfig(crop_scale=0.0)


def test_balanced_sampler_draws_classes_uniformly_and_reproducibly(tiny_cache):
    ds = CachedClips(tiny_cache)
    counts = ds.class_counts()
    assert counts.max() > counts[counts > 0].min()  # imbalanced to begin with
    draws = list(balanced_sampler(ds, seed=3, num_samples=8000))
    drawn = Counter(int(ds.labels[i]) for i in draws)
    assert -1 not in drawn  # unlabelled test windows are never drawn
    present = [c for c in range(8) if counts[c] > 0]
    for c in present:
        assert abs(drawn[c] / 8000 - 1 / len(present)) < 0.35 / len(present)
    assert draws == list(balanced_sampler(ds, seed=3, num_samples=8000))
    assert draws != list(balanced_sampler(ds, seed=4, num_samples=8000))


def test_loader_with_workers_reads_every_sample_once(tiny_cache):
    ds = CachedClips(tiny_cache, split="train", train=True)
    loader = make_loader(ds, 16, workers=2, shuffle=True, seed=0)
    ids = []
    for batch in loader:
        assert batch["video"].shape[1:] == (4, 3, 48, 48) and batch["audio"].dtype == torch.float32
        ids += batch["sample_id"]
    assert sorted(ids) == sorted(e["id"] for e in ds.entries)


def test_normalize_video_maps_uint8_to_minus_one_one():
    video = torch.tensor([0, 255, 128], dtype=torch.uint8)
    assert torch.allclose(normalize_video(video), torch.tensor([-1.0, 1.0, 128 / 127.5 - 1]), atol=1e-6)
    assert normalize_video(video).dtype == torch.float32
