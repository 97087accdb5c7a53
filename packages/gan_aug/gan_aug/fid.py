"""FID, per-class FID (intra-FID) and KID with pytorch-fid's InceptionV3 (``gan-aug fid``).

Conventions (METHOD.md, "FID conventions"): pool3 features (2048-d) of pytorch-fid 0.3.0's network, images
resized bilinearly to 299 exactly as pytorch-fid does, pytorch-fid's Fréchet formula (computed without its
30-second matrix square root by default; same value, see :func:`fid_from_features`). FID is biased at
small N, so N is in every report, both sides are compared at equal N, N < 2,048 is refused unless asked for,
and KID (unbiased) is given beside it. Real features are cached on disk, keyed by the data listing and the
settings, so a GAN run compares against the same real set without extracting it again.

Sources: a manifest CSV (or a folder holding ``manifest.csv``), a prepared cache (``expr-data prepare``
output) or a folder of images (recursive; no labels). :class:`FeatureExtractor`, :func:`fid_from_features`
and :func:`kid_from_features` are the API a trainer calls every N steps. ``--floor`` adds the same report
between two disjoint halves of the real data (:mod:`gan_aug.fid_floor`): the level a synthetic set's FID
is to be read against.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from expr_common.data.readers import DatasetFormatError
from expr_common.labels import CLASS_NAMES
from expr_common.logs import get_logger, progress
from expr_common.media import MediaError
from expr_common.runs import repo_root
from gan_aug.fid_metrics import (  # noqa: F401 (re-exported: the FID API lives under gan_aug.fid)
    KID_SUBSET_SIZE,
    KID_SUBSETS,
    FidError,
    fid_from_features,
    kid_from_features,
    pytorch_fid_distance,
    statistics,
)
from gan_aug.fid_sources import ImageItem, Source, _Loader, listing_hash, open_source, subsample  # noqa: F401
from gan_aug.fid_weights import FidWeightsError, default_weights_path, load_inception

FLOOR_UNITS = ("auto", "subject", "video", "image")  # see gan_aug.fid_floor
MIN_FID_N = 2048  # below the feature dimension the covariance is singular and FID's bias is large
RESIZE = 299  # pytorch-fid's bilinear resize (align_corners=False, no antialias)
FEATURE_DIM = 2048
_FOLDER_SUFFIXES = (".png", ".jpg", ".jpeg")
_CACHE_VERSION = 1  # bump when the way features are computed changes

log = get_logger("gan_aug.fid")


USER_ERRORS = (FidError, FidWeightsError, DatasetFormatError, MediaError)  # `gan-aug fid`: one-line errors


def small_n_warning(n: int) -> str:
    return (
        f"N={n} < {MIN_FID_N}: FID is biased upwards at small N and the bias depends on N; compare FIDs "
        f"only at equal N, and prefer KID (unbiased) for small sets."
    )


# ---- features -------------------------------------------------------------------------------------------


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


class FeatureExtractor:
    """pytorch-fid's InceptionV3 loaded once from the local weights; pool3 features of image batches.

    ``channels_last`` runs the same network ~1.4x faster on CPU (features differ by ~1e-5, FID by far less
    than 1e-3); ``channels_last=False`` reproduces pytorch-fid's computation bit for bit."""

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 50,
        channels_last: bool = True,
    ):
        self.weights = Path(weights) if weights is not None else default_weights_path()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch_size = batch_size
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        # Resizing happens here, per input size, so one batch may mix sizes; the network only normalises.
        self.model = load_inception(self.weights, resize_input=False).to(
            self.device, memory_format=self.memory_format
        )
        self.weights_sha256 = _file_sha256(self.weights)
        # What the features depend on, for cache keys: the weights, and the kernels (~1e-5 apart).
        self.fingerprint = f"{self.weights_sha256}:{'channels_last' if channels_last else 'contiguous'}"
        self.images_seen = 0

    @torch.inference_mode()
    def _run(self, images: torch.Tensor) -> np.ndarray:
        """float ``[B, 3, 299, 299]`` in [0, 1] on the device -> float32 ``[B, 2048]``."""
        self.images_seen += len(images)
        out = self.model(images.contiguous(memory_format=self.memory_format))[0]
        return out.flatten(1).float().cpu().numpy()

    @staticmethod
    def _resize(images: torch.Tensor) -> torch.Tensor:
        if images.shape[-2:] == (RESIZE, RESIZE):
            return images
        return F.interpolate(images, size=(RESIZE, RESIZE), mode="bilinear", align_corners=False)

    @torch.inference_mode()
    def features(self, images: torch.Tensor, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
        """Pool3 features ``[N, 2048]`` of ``images [N, 3, H, W]``: uint8 (0..255) or float in ``value_range``
        (a generator's tanh output: ``(-1, 1)``; clamped, as saving it as an image would)."""
        chunks = []
        for start in range(0, len(images), self.batch_size):
            x = images[start : start + self.batch_size].to(self.device)
            if x.dtype == torch.uint8:
                x = x.float().div(255)  # torchvision's ToTensor, as pytorch-fid reads files
            else:
                low, high = value_range
                x = ((x.float() - low) / (high - low)).clamp(0, 1)
            chunks.append(self._run(self._resize(x)))
        return np.concatenate(chunks) if chunks else np.zeros((0, FEATURE_DIM), np.float32)

    def _features_of_arrays(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, a in enumerate(arrays):
            by_size.setdefault(a.shape, []).append(i)
        with torch.inference_mode():
            batch = torch.empty(len(arrays), 3, RESIZE, RESIZE, device=self.device)
            for rows in by_size.values():  # one resize per input size: bilinear is per image anyway
                x = torch.from_numpy(np.stack([arrays[i] for i in rows])).to(self.device)
                batch[rows] = self._resize(x.permute(0, 3, 1, 2).float().div(255))
        return self._run(batch)

    def features_of_items(self, items: Sequence[ImageItem], desc: str = "features") -> np.ndarray:
        """Features of listed images; the next batch is decoded in a thread while this one runs."""
        batches = [items[i : i + self.batch_size] for i in range(0, len(items), self.batch_size)]
        out = np.zeros((len(items), FEATURE_DIM), np.float32)
        loader, start = _Loader(), 0
        with (
            ThreadPoolExecutor(max_workers=1) as pool,
            progress(total=len(items), desc=desc, unit="img") as bar,
        ):
            pending = pool.submit(loader.load, batches[0]) if batches else None
            for i, batch in enumerate(batches):
                arrays = pending.result()
                if i + 1 < len(batches):
                    pending = pool.submit(loader.load, batches[i + 1])
                out[start : start + len(batch)] = self._features_of_arrays(arrays)
                start += len(batch)
                bar.update(len(batch))
        return out


@dataclass
class Features:
    features: np.ndarray  # float32 [N, 2048]
    labels: np.ndarray  # int64 [N], -1 unknown

    def __len__(self) -> int:
        return len(self.features)


def source_features(
    items: Sequence[ImageItem],
    extractor: FeatureExtractor,
    cache_dir: str | Path | None = None,
    desc: str = "features",
) -> tuple[Features, bool]:
    """Features of ``items`` and whether they came from ``cache_dir`` (keyed by listing + settings)."""
    labels = np.array([item.label for item in items], dtype=np.int64)
    if cache_dir is None:
        return Features(extractor.features_of_items(items, desc), labels), False
    settings = {"listing": listing_hash(items), "n": len(items), "resize": RESIZE, "mode": "bilinear"}
    settings |= {"extractor": extractor.fingerprint, "version": _CACHE_VERSION}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:24]
    path = Path(cache_dir) / f"features-{key}.npz"
    try:
        with np.load(path) as stored:
            return Features(stored["features"], stored["labels"]), True
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        pass  # absent or unreadable (e.g. a disk filled mid-write elsewhere): extract again
    feats = Features(extractor.features_of_items(items, desc), labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".features-", suffix=".npz", dir=path.parent)
    with os.fdopen(fd, "wb") as handle:  # temp + rename: a crash never leaves a torn cache entry
        np.savez(handle, features=feats.features, labels=feats.labels, settings=json.dumps(settings))
    os.replace(tmp, path)
    return feats, False


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


# ---- report ---------------------------------------------------------------------------------------------


def compute_report(
    real_src: str | Path | Source, fake_src: str | Path | Source, **options: Any
) -> dict[str, Any]:
    """FID (and per-class FID, KID) of ``fake_src`` against ``real_src`` at equal N =
    ``min(n, |real|, |fake|)``; real features cached under ``cache_dir`` (None: no cache). The options are
    those of :func:`report_with_features`."""
    return report_with_features(real_src, fake_src, **options)[0]


def report_with_features(
    real_src: str | Path | Source,
    fake_src: str | Path | Source,
    *,
    n: int | None = None,
    per_class: bool = False,
    kid: bool = False,
    allow_small_n: bool = False,
    extractor: FeatureExtractor | None = None,
    weights: str | Path | None = None,
    device: str | None = None,
    batch_size: int = 50,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    kid_subsets: int = KID_SUBSETS,
    kid_subset_size: int = KID_SUBSET_SIZE,
    frechet: str = "eigen",
    cache_fake: bool = False,
    descs: tuple[str, str] = ("real features", "fake features"),
) -> tuple[dict[str, Any], Features, Features]:
    """The report of :func:`compute_report`, and the (subsampled, equal-N) real and fake features it was
    computed from. ``cache_fake`` caches the fake side's features as well (for the real-vs-real floor, whose
    two sides are both real data); ``descs`` label the two progress bars."""
    real = real_src if isinstance(real_src, Source) else open_source(real_src)
    fake = fake_src if isinstance(fake_src, Source) else open_source(fake_src)
    if per_class:
        unlabelled = [s.name for s in (real, fake) if not s.labelled]
        if unlabelled:
            raise FidError(f"--per-class needs labels on both sides; none in {', '.join(unlabelled)} "
                           "(image folders carry no labels: use a manifest or a prepared cache)")  # fmt: skip
    if n is not None and n < 2:
        raise FidError(f"--n {n}: FID needs at least 2 images per side")
    size = min(n or len(real.items), len(real.items), len(fake.items))
    notes: list[str] = []
    if size < MIN_FID_N:
        if not allow_small_n:
            raise FidError(
                f"FID with N={size} (< {MIN_FID_N}) is refused: {small_n_warning(size)} Use more images, "
                f"or pass --allow-small-n to compute it anyway (the report then carries this warning)."
            )
        notes.append(small_n_warning(size))
    real_items, fake_items = subsample(real.items, size, seed), subsample(fake.items, size, seed + 1)
    if per_class:  # checked before the (slow) extraction: labels are known from the listing
        small = _small_classes(real_items, fake_items)
        if small and not allow_small_n:
            raise FidError(f"per-class FID with N < {MIN_FID_N} in {small} is refused: pass --allow-small-n")
        if small:
            notes.append(f"per-class N < {MIN_FID_N} ({small}): " + small_n_warning(min(small.values())))
    extractor = extractor or FeatureExtractor(weights, device, batch_size)
    real_feats, hit = source_features(real_items, extractor, cache_dir, descs[0])
    fake_feats, _ = source_features(fake_items, extractor, cache_dir if cache_fake else None, descs[1])
    report: dict[str, Any] = {
        "n": size,
        "fid": fid_from_features(real_feats.features, fake_feats.features, frechet),
        "real": {"source": real.name, "kind": real.kind, "available": len(real.items), "n": size},
        "fake": {"source": fake.name, "kind": fake.kind, "available": len(fake.items), "n": size},
        "real_features_cache": "off" if cache_dir is None else ("hit" if hit else "miss"),
        "settings": {"resize": RESIZE, "mode": "bilinear", "weights": str(extractor.weights)}
        | {"extractor": extractor.fingerprint, "seed": seed, "frechet": frechet},
    }
    if kid:
        report["kid"] = kid_from_features(
            real_feats.features, fake_feats.features, kid_subsets, kid_subset_size, seed
        )
    if per_class:
        report["per_class"] = per_class_fid(real_feats, fake_feats, seed, frechet)
    report["warnings"] = notes
    return report, real_feats, fake_feats


def _small_classes(real: Sequence[ImageItem], fake: Sequence[ImageItem]) -> dict[str, int]:
    """Classes whose per-class FID would run at 2 <= N < MIN_FID_N (N: the smaller side)."""
    counts = [
        np.bincount([i.label for i in s if i.label >= 0], minlength=len(CLASS_NAMES)) for s in (real, fake)
    ]
    sizes = np.minimum(*counts)
    return {CLASS_NAMES[c]: int(k) for c, k in enumerate(sizes) if 2 <= k < MIN_FID_N}


# ---- `gan-aug fid` --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--real", required=True, help="manifest CSV (or its folder), prepared cache, or image folder")
    add("--fake", default=None, help="same kinds as --real (gan-aug generate writes a manifest)")
    add(
        "--floor",
        action="store_true",
        help="add the real-vs-real floor: the same report between two disjoint halves of --real",
    )
    add(
        "--floor-by",
        choices=FLOOR_UNITS,
        default="auto",
        help="what stays whole on one side of the floor split (auto: subject, else video, else image)",
    )
    add("--real-split", default=None, help="only this split of a --real manifest/cache")
    add("--real-domain", default=None, help="only this domain of a --real manifest/cache (e.g. affwild2)")
    add("--per-class", action="store_true", help="intra-FID: each class against its real images")
    add("--kid", action="store_true", help=f"KID over {KID_SUBSETS} subsets of min({KID_SUBSET_SIZE}, N)")
    add("--n", type=int, default=None, help="images per side (default: the smaller source)")
    add("--allow-small-n", action="store_true", help=f"compute FID with N < {MIN_FID_N} (biased; warned)")
    add("--out", type=Path, default=None, help="write the JSON report here (always printed)")
    add("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if available)")
    add("--batch-size", type=int, default=50)
    add(
        "--weights",
        type=Path,
        default=None,
        help="weights file (default: where `gan-aug fid-weights` puts it)",
    )
    add("--cache-dir", type=Path, default=None, help="real-feature cache (default runs/fid_cache)")
    add("--no-cache", action="store_true", help="do not read or write the real-feature cache")
    add("--seed", type=int, default=0, help="subsampling and KID subsets")
    add(
        "--frechet",
        choices=("eigen", "pytorch-fid"),
        default="eigen",
        help="Fréchet computation (same value)",
    )


def run(args: argparse.Namespace) -> int:
    if args.fake is None and not args.floor:
        raise FidError("give --fake (the images to score), --floor (the real-vs-real floor), or both")
    real = open_source(args.real, args.real_split, args.real_domain)
    cache_dir = None if args.no_cache else (args.cache_dir or repo_root() / "runs" / "fid_cache")
    options = {"n": args.n, "per_class": args.per_class, "kid": args.kid, "allow_small_n": args.allow_small_n}
    options |= {"cache_dir": cache_dir, "seed": args.seed, "frechet": args.frechet}
    options["extractor"] = FeatureExtractor(args.weights, args.device, args.batch_size)  # loaded once
    report: dict[str, Any] = {}
    fake_features = None
    if args.fake is not None:
        report, _, fake_features = report_with_features(real, args.fake, **options)
    if args.floor:
        from gan_aug.fid_floor import floor_report

        report |= floor_report(real, by=args.floor_by, fake_features=fake_features, **options)
    for section, body in [("", report), *((f"{k}: ", report.get(k, {})) for k in ("floor", "vs_floor"))]:
        for warning in body.get("warnings", []):
            log.warning(section + warning)
    text = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0
