"""FID, per-class FID (intra-FID) and KID of one image source against another, at equal N.

FID is biased at small N, so N is in every report, both sides are compared at equal N, N < 2,048 is
refused unless asked for, and KID (unbiased) is given beside it. Real features are cached on disk, keyed by
the data listing and the settings, so a GAN run compares against the same real set without extracting it
again. Sources: a manifest CSV (or a folder holding ``manifest.csv``), a prepared cache or a folder of
images (:mod:`gan_aug.fid.sources`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from expr_common.labels import CLASS_NAMES
from gan_aug.fid.features import RESIZE, FeatureExtractor, Features, source_features
from gan_aug.fid.metrics import KID_SUBSET_SIZE, KID_SUBSETS, FidError, fid_from_features, kid_from_features
from gan_aug.fid.sources import ImageItem, Source, open_source, subsample

MIN_FID_N = 2048  # below the feature dimension the covariance is singular and FID's bias is large


@dataclass(frozen=True)
class FidOptions:
    """How a report is computed (``gan-aug fid``'s flags): N, the extra metrics, the real features' cache,
    the seed of the equal-N subsamples and the Fréchet distance's method."""

    n: int | None = None  # images per side (None: the smaller side's count)
    per_class: bool = False  # intra-FID per class (needs labels on both sides)
    kid: bool = False
    allow_small_n: bool = False  # compute N < MIN_FID_N anyway (the report carries a warning)
    cache_dir: str | Path | None = None  # real features cached here (None: no cache)
    seed: int = 0
    kid_subsets: int = KID_SUBSETS
    kid_subset_size: int = KID_SUBSET_SIZE
    frechet: str = "eigen"  # the matrix square root: "eigen" or pytorch-fid's "scipy"

    def __post_init__(self) -> None:
        if self.n is not None and self.n < 2:
            raise FidError(f"--n {self.n}: FID needs at least 2 images per side")


DEFAULT_OPTIONS = FidOptions()


def small_n_warning(n: int) -> str:
    return (
        f"N={n} < {MIN_FID_N}: FID is biased upwards at small N and the bias depends on N; compare FIDs "
        f"only at equal N, and prefer KID (unbiased) for small sets."
    )


def per_class_fid(real: Features, fake: Features, seed: int = 0, method: str = "eigen") -> dict[str, Any]:
    """Intra-FID: each class's FID against that class's real images (both at that class's equal N), and
    their mean over the classes present on both sides."""
    classes: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    rng = np.random.default_rng(seed)
    for label, name in enumerate(CLASS_NAMES):
        r, f = np.flatnonzero(real.labels == label), np.flatnonzero(fake.labels == label)
        n = min(len(r), len(f))
        if n < 2:
            if len(r) or len(f):
                skipped[name] = f"{len(r)} real / {len(f)} fake images: FID needs 2 or more on each side"
            continue
        r, f = np.sort(rng.choice(r, n, replace=False)), np.sort(rng.choice(f, n, replace=False))
        fid = fid_from_features(real.features[r], fake.features[f], method)
        classes[name] = {"label": label, "n": n, "fid": fid}
    if not classes:
        raise FidError("per-class FID: no class has 2 or more images on both sides")
    intra = float(np.mean([c["fid"] for c in classes.values()]))
    return {"intra_fid": intra, "classes": classes, "skipped": skipped}


def compute_report(
    real_src: str | Path | Source,
    fake_src: str | Path | Source,
    options: FidOptions = DEFAULT_OPTIONS,
    extractor: FeatureExtractor | None = None,
) -> dict[str, Any]:
    """FID (and per-class FID, KID) of ``fake_src`` against ``real_src`` at equal N =
    ``min(options.n, |real|, |fake|)``, with ``extractor`` (default: pytorch-fid's InceptionV3 from the
    local weights)."""
    return report_with_features(real_src, fake_src, options, extractor=extractor)[0]


def report_with_features(
    real_src: str | Path | Source,
    fake_src: str | Path | Source,
    options: FidOptions = DEFAULT_OPTIONS,
    *,
    extractor: FeatureExtractor | None = None,
    cache_fake: bool = False,
    descs: tuple[str, str] = ("real features", "fake features"),
) -> tuple[dict[str, Any], Features, Features]:
    """The report of :func:`compute_report`, and the (subsampled, equal-N) real and fake features it was
    computed from. ``cache_fake`` caches the fake side's features as well (for the real-vs-real floor, whose
    two sides are both real data); ``descs`` label the two progress bars."""
    o = options
    real = real_src if isinstance(real_src, Source) else open_source(real_src)
    fake = fake_src if isinstance(fake_src, Source) else open_source(fake_src)
    if o.per_class:
        unlabelled = [s.name for s in (real, fake) if not s.labelled]
        if unlabelled:
            raise FidError(f"--per-class needs labels on both sides; none in {', '.join(unlabelled)} "
                           "(image folders carry no labels: use a manifest or a prepared cache)")  # fmt: skip
    size = min(o.n or len(real.items), len(real.items), len(fake.items))
    notes: list[str] = []
    if o.n is not None and size < o.n:  # --n asked for more than one side holds: say so, in the report too
        notes.append(f"--n {o.n} asked for more images than there are: N = {size} (real {len(real.items)}, "
                     f"fake {len(fake.items)})")  # fmt: skip
    if size < MIN_FID_N:
        if not o.allow_small_n:
            raise FidError(
                f"FID with N={size} (< {MIN_FID_N}) is refused: {small_n_warning(size)} Use more images, "
                f"or pass --allow-small-n to compute it anyway (the report then carries this warning)."
            )
        notes.append(small_n_warning(size))
    real_items, fake_items = subsample(real.items, size, o.seed), subsample(fake.items, size, o.seed + 1)
    if o.per_class:  # checked before the (slow) extraction: labels are known from the listing
        small = _small_classes(real_items, fake_items)
        if small and not o.allow_small_n:
            raise FidError(f"per-class FID with N < {MIN_FID_N} in {small} is refused: pass --allow-small-n")
        if small:
            notes.append(f"per-class N < {MIN_FID_N} ({small}): " + small_n_warning(min(small.values())))
    extractor = extractor or FeatureExtractor()
    real_feats, hit = source_features(real_items, extractor, o.cache_dir, descs[0])
    fake_feats, _ = source_features(fake_items, extractor, o.cache_dir if cache_fake else None, descs[1])
    report: dict[str, Any] = {
        "n": size,
        "fid": fid_from_features(real_feats.features, fake_feats.features, o.frechet),
        "real": _side(real, size),
        "fake": _side(fake, size),
        "real_features_cache": "off" if o.cache_dir is None else ("hit" if hit else "miss"),
        "settings": {"resize": RESIZE, "mode": "bilinear", "weights": str(extractor.weights)}
        | {"extractor": extractor.fingerprint, "seed": o.seed, "frechet": o.frechet},
    }
    if o.kid:
        report["kid"] = kid_from_features(
            real_feats.features, fake_feats.features, o.kid_subsets, o.kid_subset_size, o.seed
        )
    if o.per_class:
        report["per_class"] = per_class_fid(real_feats, fake_feats, o.seed, o.frechet)
    for side in (real, fake):
        if side.skipped:
            count = sum(side.skipped.values())
            notes.append(f"{side.name}: {count} unreadable images skipped (e.g. {', '.join(side.examples)})")
    report["warnings"] = notes
    return report, real_feats, fake_feats


def _side(source: Source, n: int) -> dict[str, Any]:
    body = {"source": source.name, "kind": source.kind, "available": len(source.items), "n": n}
    return body | {"skipped": dict(source.skipped)}


def _small_classes(real: Sequence[ImageItem], fake: Sequence[ImageItem]) -> dict[str, int]:
    """Classes whose per-class FID would run at 2 <= N < MIN_FID_N (N: the smaller side)."""
    counts = [
        np.bincount([i.label for i in s if i.label >= 0], minlength=len(CLASS_NAMES)) for s in (real, fake)
    ]
    sizes = np.minimum(*counts)
    return {CLASS_NAMES[c]: int(k) for c, k in enumerate(sizes) if 2 <= k < MIN_FID_N}
