"""The real-vs-real floor of ``gan-aug fid --floor``: the same report (FID, KID, per-class FID) computed
between two disjoint halves of the real data, so a synthetic set's FID can be read against what two
samples of the real distribution itself score.

The halves are stratified by class and drawn deterministically from ``seed``. Whole groups go to one side:
a subject, else a video, else (only when neither exists, or when asked) single images. Splitting by image
puts near-duplicate frames of one video on both sides and makes the floor optimistically low; the report
says which unit was used and warns when it was images. FID's bias depends on N, and the halves hold about
half the real images, so ``vs_floor`` also compares the synthetic set and the second half against the first
half at one equal N.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from expr_common.labels import CLASS_NAMES, NUM_CLASSES
from gan_aug.fid.features import FeatureExtractor, Features
from gan_aug.fid.metrics import FidError, fid_from_features, kid_from_features
from gan_aug.fid.report import DEFAULT_OPTIONS, MIN_FID_N, FidOptions, report_with_features, small_n_warning
from gan_aug.fid.sources import ImageItem, Source

FLOOR_UNITS = ("auto", "subject", "video", "image")  # what stays whole on one side of the split

MIN_SIDE_SHARE = 0.4  # "auto" takes a coarser unit only if its smaller half still holds 40% of the images
EXACT_GROUPS = 16  # up to 2^16 assignments are scored at once (a few MB); more groups are split greedily
LOCAL_PASSES = 3  # after the greedy pass: sweeps that move single groups while the balance improves


def _group_keys(items: Sequence[ImageItem], unit: str) -> list[str] | None:
    return None if unit == "image" else [getattr(item, unit) for item in items]


def _imbalance(b_counts: np.ndarray, total: np.ndarray) -> np.ndarray:
    """How far side B (``[..., strata]`` counts; side A holds the rest) is from half of each stratum: the sum
    over strata of |A - B| as a share of the stratum, plus |A - B| of all images as a share of all (which
    mostly breaks ties between equally stratified splits)."""
    present = total > 0
    per_class = (np.abs(total - 2 * b_counts)[..., present] / total[present]).sum(axis=-1)
    return per_class + np.abs(total.sum() - 2 * b_counts.sum(axis=-1)) / total.sum()


def _assign_images(strata: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Single images: each stratum shuffled and dealt alternately, odd strata starting on alternate sides,
    so every class and the total are within one image of even."""
    side, start = np.zeros(len(strata), dtype=np.int64), 0
    for stratum in rng.permutation(np.unique(strata)):
        members = rng.permutation(np.flatnonzero(strata == stratum))
        side[members] = (np.arange(len(members)) + start) % 2
        start ^= len(members) % 2
    return side


def _assign(items: Sequence[ImageItem], keys: Sequence[str] | None, seed: int) -> np.ndarray:
    """Side (0: A, 1: B) of each item, whole groups (``keys``; None: single images) at a time, minimising
    :func:`_imbalance` (unlabelled images are one more stratum): exactly over all 2^G assignments for up to
    ``EXACT_GROUPS`` groups, else greedily (largest groups first), then moving single groups while that
    helps. Ties, and the order of equal-sized groups, are drawn from ``seed``."""
    strata = np.array([item.label if item.label >= 0 else NUM_CLASSES for item in items], dtype=np.int64)
    rng = np.random.default_rng(seed)
    if keys is None:
        return _assign_images(strata, rng)
    index = {key: g for g, key in enumerate(dict.fromkeys(keys))}  # first-seen order: fixed by the listing
    where = np.array([index[k] for k in keys])
    counts = np.zeros((len(index), NUM_CLASSES + 1))
    np.add.at(counts, (where, strata), 1)
    total = counts.sum(axis=0)
    if len(index) <= EXACT_GROUPS:
        masks = (np.arange(2 ** len(index))[:, None] >> np.arange(len(index))) & 1  # [2^G, G]
        cost = _imbalance(masks @ counts, total)
        best = np.flatnonzero(np.isclose(cost, cost.min(), rtol=0, atol=1e-12))
        return masks[rng.choice(best)][where]
    order = rng.permutation(len(index))
    order = order[np.argsort(-counts[order].sum(axis=1), kind="stable")]
    side, b_counts = np.zeros(len(index), dtype=np.int64), np.zeros(NUM_CLASSES + 1)
    for g in order:
        cost = _imbalance(np.stack([b_counts, b_counts + counts[g]]), total)  # [stay on A, go to B]
        pick = int(rng.integers(2)) if np.isclose(cost[0], cost[1]) else int(np.argmin(cost))
        side[g] = pick
        b_counts += pick * counts[g]
    for _ in range(LOCAL_PASSES):
        moved = False
        for g in order:
            step = counts[g] if side[g] == 0 else -counts[g]
            if _imbalance(b_counts + step, total) < _imbalance(b_counts, total) - 1e-12:
                side[g], b_counts, moved = 1 - side[g], b_counts + step, True
        if not moved:
            break
    return side[where]


def split_halves(
    items: Sequence[ImageItem], by: str = "auto", seed: int = 0
) -> tuple[list[ImageItem], list[ImageItem], dict[str, Any]]:
    """Two disjoint halves of ``items`` (listing order kept), stratified by class, whole ``by`` groups on
    one side; and a description of the split (unit, group and image counts, per-class counts, warnings)."""
    if by not in FLOOR_UNITS:
        raise FidError(f"--floor-by {by!r}: one of {', '.join(FLOOR_UNITS)}")
    if len(items) < 4:
        raise FidError(f"the floor needs at least 4 real images (2 per half), got {len(items)}")
    notes: list[str] = []
    candidates = ("subject", "video", "image") if by == "auto" else (by,)
    for unit in candidates:
        keys = _group_keys(items, unit)
        if keys is not None and (len(set(keys)) < 2 or not all(keys)):
            why = f"some images carry no {unit}" if not all(keys) else f"{len(set(keys))} {unit} group"
            if by != "auto":
                raise FidError(f"--floor-by {unit} is impossible here: {why}; try video or image")
            notes.append(f"split by {unit} impossible: {why}")
            continue
        side = _assign(items, keys, seed)
        smaller = min(int((side == 0).sum()), int((side == 1).sum()))
        if by == "auto" and keys is not None and smaller < MIN_SIDE_SHARE * len(items):
            notes.append(f"split by {unit} too uneven ({smaller} of {len(items)} images on the smaller side)")
            continue
        break
    halves = ([i for i, s in zip(items, side) if s == 0], [i for i, s in zip(items, side) if s == 1])
    if min(map(len, halves)) < 2:
        raise FidError(f"the floor split by {unit} leaves {min(map(len, halves))} image(s) on one side")
    if unit == "image":
        notes.append(
            "split by image: frames of one video (or person) can sit on both sides, so near-duplicates "
            "make this floor optimistically low"
        )
    per_side = [
        np.bincount([i.label for i in half if i.label >= 0], minlength=NUM_CLASSES) for half in halves
    ]
    classes = {}
    for label, name in enumerate(CLASS_NAMES):
        sizes = [int(per_side[0][label]), int(per_side[1][label])]
        if any(sizes):
            classes[name] = {"a": sizes[0], "b": sizes[1]}
            if min(sizes) == 0:
                notes.append(f"{name}: all {max(sizes)} images fell on one side (too few {unit} groups)")
    groups = (
        [len(half) for half in halves]
        if keys is None
        else [len(set(np.asarray(keys)[side == h])) for h in (0, 1)]
    )
    info = {
        "by": unit,
        "requested": by,
        "stratified": "class",
        "seed": seed,
        "groups": {"a": groups[0], "b": groups[1]},
        "images": {"a": len(halves[0]), "b": len(halves[1])},
        "classes": classes,
        "notes": notes,
    }
    return halves[0], halves[1], info


def floor_report(
    real: Source,
    options: FidOptions = DEFAULT_OPTIONS,
    *,
    by: str = "auto",
    fake_features: Features | None = None,
    extractor: FeatureExtractor | None = None,
) -> dict[str, Any]:
    """``{"floor": report}`` with the report of :func:`gan_aug.fid.report.compute_report` for half A
    ("real") vs half B ("fake") of ``real`` and the split under ``settings.split``; with ``fake_features``
    (a main report's equal-N fake features) also ``vs_floor``: fake vs A and B vs A at one equal N."""
    half_a, half_b, info = split_halves(real.items, by, options.seed)
    sides = [
        Source(f"{real.name} [floor half {h}]", real.kind, half) for h, half in zip("AB", (half_a, half_b))
    ]
    descs = ("floor half A features", "floor half B features")
    report, feats_a, feats_b = report_with_features(
        *sides, options, extractor=extractor, cache_fake=True, descs=descs
    )
    report["settings"]["split"] = {k: v for k, v in info.items() if k != "notes"}
    report["warnings"] = [*info["notes"], *report["warnings"]]
    sections: dict[str, Any] = {"floor": report}
    if fake_features is not None:
        sections["vs_floor"] = _vs_floor(feats_a, feats_b, fake_features, options)
    return sections


def _vs_floor(a: Features, b: Features, fake: Features, options: FidOptions) -> dict[str, Any]:
    """FID (and KID) of the fake set and of half B, both against half A, at N = the smallest of the three:
    the one comparison of synthetic data with the floor that FID's N-dependent bias leaves fair."""
    seed, frechet = options.seed, options.frechet
    n = min(len(a), len(b), len(fake))
    rng = np.random.default_rng(seed + 2)
    a_, b_, f_ = (x.features[np.sort(rng.choice(len(x), n, replace=False))] for x in (a, b, fake))
    fid_fake, fid_floor = fid_from_features(a_, f_, frechet), fid_from_features(a_, b_, frechet)
    out: dict[str, Any] = {
        "n": n,
        "reference": "floor half A",
        "fid": {"fake": fid_fake, "floor": fid_floor, "above_floor": fid_fake - fid_floor},
    }
    if options.kid:
        kid = (options.kid_subsets, options.kid_subset_size, seed)
        out["kid"] = {"fake": kid_from_features(a_, f_, *kid), "floor": kid_from_features(a_, b_, *kid)}
    out["warnings"] = [small_n_warning(n)] if n < MIN_FID_N else []
    return out
