"""FID, per-class FID (intra-FID) and KID with pytorch-fid's InceptionV3 (``gan-aug fid``).

Conventions (METHOD.md, "FID conventions"): pool3 features (2048-d) of pytorch-fid 0.3.0's network, images
resized bilinearly to 299 exactly as pytorch-fid does, pytorch-fid's Fréchet formula (computed without its
30-second matrix square root by default; same value, see :func:`fid_from_features`). FID is biased at
small N, so N is in every report, both sides are compared at equal N, N < 2,048 is refused unless asked for,
and KID (unbiased) is given beside it. Real features are cached on disk, keyed by the data listing and the
settings, so a GAN run compares against the same real set without extracting it again.

Sources: a manifest CSV (or a folder holding ``manifest.csv``), a prepared cache (``expr-data prepare``
output) or a folder of images (recursive; no labels). :class:`FeatureExtractor`, :func:`fid_from_features`
and :func:`kid_from_features` are the API a trainer calls every N steps.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import tempfile
import warnings
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_fid.fid_score import calculate_frechet_distance

from expr_common.data import dataset as cache_format
from expr_common.data import manifest
from expr_common.data.readers import DatasetFormatError
from expr_common.labels import CLASS_NAMES, UNLABELLED
from expr_common.logs import get_logger, progress
from expr_common.media import MediaError, probe, read_video
from expr_common.runs import repo_root
from gan_aug.fid_weights import FidWeightsError, default_weights_path, load_inception

MIN_FID_N = 2048  # below the feature dimension the covariance is singular and FID's bias is large
RESIZE = 299  # pytorch-fid's bilinear resize (align_corners=False, no antialias)
FEATURE_DIM = 2048
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # as clean-fid / torch-fidelity
_FOLDER_SUFFIXES = (".png", ".jpg", ".jpeg")
_CACHE_VERSION = 1  # bump when the way features are computed changes

log = get_logger("gan_aug.fid")


class FidError(ValueError):
    """FID cannot be computed as asked (too few samples, no labels, empty source); the message says why."""


USER_ERRORS = (FidError, FidWeightsError, DatasetFormatError, MediaError)  # `gan-aug fid`: one-line errors


def small_n_warning(n: int) -> str:
    return (
        f"N={n} < {MIN_FID_N}: FID is biased upwards at small N and the bias depends on N; compare FIDs "
        f"only at equal N, and prefer KID (unbiased) for small sets."
    )


# ---- sources --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageItem:
    """One image: a file (``index`` None), frame ``index[0]`` of a video, or crop ``index`` (sample, frame)
    of a cache shard."""

    path: Path
    label: int = UNLABELLED
    index: tuple[int, ...] | None = None


@dataclass
class Source:
    name: str
    kind: str  # "manifest", "cache" or "folder"
    items: list[ImageItem]

    @property
    def labelled(self) -> bool:
        return any(item.label != UNLABELLED for item in self.items)


def open_source(src: str | Path, split: str | None = None, domain: str | None = None) -> Source:
    """List the images of ``src``; ``split``/``domain`` filter manifests and caches (folders have neither)."""
    path = Path(src)
    if not path.exists():
        raise FidError(
            f"{path} does not exist (expected a manifest CSV, a prepared cache or an image folder)"
        )
    if path.is_file() or (path / manifest.MANIFEST).is_file():
        kind, items = "manifest", _manifest_items(path, split, domain)
    elif cache_format.read_index(path) is not None:
        kind, items = "cache", _cache_items(path, split, domain)
    else:
        if split is not None or domain is not None:
            raise FidError(f"{path} is an image folder: it has no split or domain to filter on")
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in _FOLDER_SUFFIXES and p.is_file())
        kind, items = "folder", [ImageItem(p) for p in files]
    if not items:
        raise FidError(
            f"{path} ({kind}) holds no images" + (" for the chosen split/domain" if split or domain else "")
        )
    return Source(str(path), kind, items)


def _manifest_items(path: Path, split: str | None, domain: str | None) -> list[ImageItem]:
    refs = manifest.read(path, (split,) if split else None).refs
    items: list[ImageItem] = []
    for ref in refs:
        if domain is not None and ref.domain != domain:
            continue
        if ref.frame_paths is not None:
            for i, frame in enumerate(ref.frame_paths):
                if frame is not None:
                    items.append(ImageItem(frame, ref.frame_labels[i] if ref.frame_labels else ref.label))
        elif ref.video is not None:
            count = probe(ref.video).frames or len(read_video(ref.video))  # decode when the header is silent
            items += [ImageItem(ref.video, ref.label, (i,)) for i in range(count)]
    return items


def _cache_items(path: Path, split: str | None, domain: str | None) -> list[ImageItem]:
    index = cache_format.read_index(path)
    assert index is not None
    items: list[ImageItem] = []
    shards: dict[int, torch.Tensor] = {}
    for entry in index["samples"]:
        if (
            not entry["has_video"]
            or (split and entry["split"] != split)
            or (domain and entry["domain"] != domain)
        ):
            continue
        number = entry["shard"]
        if number not in shards:  # mmap: only the label rows are read
            shard = torch.load(path / index["shards"][number]["file"], mmap=True, weights_only=True)
            shards[number] = shard["frame_labels"]
        shard_file = path / index["shards"][number]["file"]
        for k, label in enumerate(shards[number][entry["offset"]].tolist()):
            items.append(ImageItem(shard_file, int(label), (entry["offset"], k)))
    return items


class _Loader:
    """Decodes items to uint8 ``[H, W, 3]``; keeps the last video / shard open, since items come in order."""

    def __init__(self) -> None:
        self._open: tuple[Path, Any] | None = None

    def _get(self, path: Path, opener: Any) -> Any:
        if self._open is None or self._open[0] != path:
            self._open = (path, opener(path))
        return self._open[1]

    def load(self, items: Sequence[ImageItem]) -> list[np.ndarray]:
        out = []
        for item in items:
            if item.index is None:  # the same decoding as pytorch-fid: PIL, converted to RGB
                with Image.open(item.path) as image:
                    out.append(np.asarray(image.convert("RGB")))
            elif item.path.suffix == ".pt":
                shard = self._get(item.path, lambda p: torch.load(p, mmap=True, weights_only=True))
                out.append(shard["video"][item.index].permute(1, 2, 0).numpy())
            else:
                frames = self._get(item.path, read_video)
                if item.index[0] >= len(frames):
                    raise MediaError(f"{item.path}: frame {item.index[0]} listed, {len(frames)} decoded")
                out.append(frames[item.index[0]])
        return out


def subsample(items: Sequence[ImageItem], n: int, seed: int = 0) -> list[ImageItem]:
    """``n`` items drawn without replacement (deterministic for ``seed``), kept in listing order."""
    if n >= len(items):
        return list(items)
    keep = np.sort(np.random.default_rng(seed).choice(len(items), size=n, replace=False))
    return [items[i] for i in keep]


def listing_hash(items: Sequence[ImageItem]) -> str:
    """Hash of paths, frame indices, labels, mtimes and sizes: changes whenever the data may have."""
    digest = hashlib.sha256()
    stats: dict[Path, str] = {}
    for item in items:
        if item.path not in stats:
            st = item.path.stat()
            stats[item.path] = f"{st.st_mtime_ns}:{st.st_size}"
        digest.update(f"{item.path.resolve()}|{item.index}|{item.label}|{stats[item.path]}\n".encode())
    return digest.hexdigest()


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


# ---- metrics --------------------------------------------------------------------------------------------


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance in float64, as pytorch-fid computes them."""
    act = np.asarray(features, dtype=np.float64)
    return act.mean(axis=0), np.cov(act, rowvar=False)


def pytorch_fid_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID by pytorch-fid's own ``calculate_frechet_distance`` (scipy ``sqrtm`` of a 2048² product: 20-40 s
    on two CPU cores, and inexact when the product is singular, as it is whenever N <= 2048)."""
    with warnings.catch_warnings():  # its deprecated `disp` argument and singular-matrix notices
        warnings.simplefilter("ignore")
        return float(calculate_frechet_distance(*statistics(a), *statistics(b)))


def fid_from_features(a: np.ndarray, b: np.ndarray, method: str = "eigen") -> float:
    """FID ``|mu1 - mu2|² + tr S1 + tr S2 - 2 tr sqrt(S1 S2)`` between two feature sets ``[N, d]``.

    ``"eigen"`` computes pytorch-fid's formula exactly, without a matrix square root: the eigenvalues of
    S1 S2 are those of the symmetric S1^½ S2 S1^½, and when N <= d its non-zero ones are the squared
    singular values of ``X1c X2cᵀ / sqrt((n1-1)(n2-1))`` (centred features), an N x N problem. Seconds
    instead of half a minute; ``"pytorch-fid"`` calls pytorch-fid's function (tests check they agree)."""
    if len(a) < 2 or len(b) < 2:
        raise FidError(f"FID needs at least 2 samples per side, got {len(a)} and {len(b)}")
    if method == "pytorch-fid":
        return pytorch_fid_distance(a, b)
    if method != "eigen":
        raise FidError(f"unknown Fréchet method {method!r}: 'eigen' or 'pytorch-fid'")
    # torch.linalg (MKL/cuSOLVER) rather than numpy's LAPACK: its SVD of 2048² is ~10x faster on CPU.
    x1, x2 = (
        torch.as_tensor(np.asarray(a), dtype=torch.float64),
        torch.as_tensor(np.asarray(b), dtype=torch.float64),
    )
    mu1, mu2 = x1.mean(dim=0), x2.mean(dim=0)
    x1, x2 = x1 - mu1, x2 - mu2
    n1, n2 = len(x1), len(x2)
    trace1, trace2 = x1.square().sum() / (n1 - 1), x2.square().sum() / (n2 - 1)
    if max(n1, n2) <= x1.shape[1]:
        tr_sqrt = torch.linalg.svdvals(x1 @ x2.T).sum() / math.sqrt((n1 - 1) * (n2 - 1))
    else:
        s1, s2 = x1.T @ x1 / (n1 - 1), x2.T @ x2 / (n2 - 1)
        w, v = torch.linalg.eigh(s1)
        root = (v * w.clamp(min=0).sqrt()) @ v.T
        tr_sqrt = torch.linalg.eigvalsh(root @ s2 @ root).clamp(min=0).sqrt().sum()
    diff = mu1 - mu2
    return float(diff @ diff + trace1 + trace2 - 2 * tr_sqrt)


def kid_from_features(
    a: np.ndarray,
    b: np.ndarray,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = 0,
) -> dict[str, float | int]:
    """Unbiased MMD² with the cubic polynomial kernel ``(x·y/d + 1)³`` (Bińkowski et al. 2018), averaged over
    ``subsets`` random subsets of ``min(subset_size, N)`` per side; mean and std over subsets."""
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise FidError(f"KID needs at least 2 samples per side, got {len(a)} and {len(b)}")
    rng, d = np.random.default_rng(seed), a.shape[1]
    values = np.empty(subsets)
    for s in range(subsets):
        x = np.asarray(a[rng.choice(len(a), m, replace=False)], dtype=np.float64)
        y = np.asarray(b[rng.choice(len(b), m, replace=False)], dtype=np.float64)
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))  # i != j only
        values[s] = within - 2 * kxy.mean()
    return {"mean": float(values.mean()), "std": float(values.std()), "subset_size": m, "subsets": subsets}


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
) -> dict[str, Any]:
    """FID (and per-class FID, KID) of ``fake_src`` against ``real_src`` at equal N =
    ``min(n, |real|, |fake|)``; real features cached under ``cache_dir`` (None: no cache)."""
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
    real_feats, hit = source_features(real_items, extractor, cache_dir, "real features")
    fake_feats, _ = source_features(fake_items, extractor, None, "fake features")
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
    return report


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
    add("--fake", required=True, help="same kinds as --real (gan-aug generate writes a manifest)")
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
    real = open_source(args.real, args.real_split, args.real_domain)
    cache_dir = None if args.no_cache else (args.cache_dir or repo_root() / "runs" / "fid_cache")
    options = {"n": args.n, "per_class": args.per_class, "kid": args.kid, "allow_small_n": args.allow_small_n}
    options |= {"weights": args.weights, "device": args.device, "batch_size": args.batch_size}
    options |= {"cache_dir": cache_dir, "seed": args.seed, "frechet": args.frechet}
    report = compute_report(real, args.fake, **options)
    for warning in report["warnings"]:
        log.warning(warning)
    text = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0
