"""Image sources for FID: a manifest, a prepared cache, or an image folder, listed as items that are
decoded the way pytorch-fid decodes files (PIL, RGB), then subsampled and hashed for the feature cache."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from expr_common.data import dataset as cache_format
from expr_common.data import manifest
from expr_common.data.readers import IMAGE_SUFFIXES
from expr_common.labels import UNLABELLED
from expr_common.media import MediaError, probe, read_video
from gan_aug.fid.metrics import FidError


@dataclass(frozen=True)
class ImageItem:
    """One image: a file (``index`` None), frame ``index[0]`` of a video, or crop ``index`` (sample, frame)
    of a cache shard. ``video`` and ``subject`` say where it comes from, so that a split can keep the
    near-duplicate frames of one video (or person) together; neither is part of the feature-cache key."""

    path: Path
    label: int = UNLABELLED
    index: tuple[int, ...] | None = None
    video: str = ""  # manifest sample / cache reference / image folder the image belongs to
    subject: str = ""  # identity ("" when the source has none: image folders)


@dataclass
class Source:
    name: str
    kind: str  # "manifest", "cache" or "folder"
    items: list[ImageItem]
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> images left out of the listing
    examples: list[str] = field(default_factory=list)  # a few of them, for the report's warning

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
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        # A folder's images carry no identity; their sub-folder (one per video in Aff-Wild2's layout) is
        # the best stand-in for the video they come from.
        kind, items = "folder", [ImageItem(p, video=str(p.parent.relative_to(path))) for p in files]
    readable, skipped, examples = _readable(items)
    if not readable:
        found = f" ({sum(skipped.values())} unreadable)" if skipped else ""
        raise FidError(
            f"{path} ({kind}) holds no images{found}"
            + (" for the chosen split/domain" if split or domain else "")
        )
    return Source(str(path), kind, readable, skipped, examples)


def _readable(items: list[ImageItem]) -> tuple[list[ImageItem], Counter[str], list[str]]:
    """The image files among ``items`` whose header PIL can read (an empty or non-image file is skipped
    and counted, as ``prepare`` does); frames of videos and caches are checked when they are decoded."""
    kept, skipped, examples = [], Counter(), []
    for item in items:
        if item.index is None:
            try:
                with Image.open(item.path):
                    pass
            except (OSError, Image.DecompressionBombError) as exc:  # UnidentifiedImageError is an OSError
                skipped["unreadable image"] += 1
                if len(examples) < 3:
                    examples.append(f"{item.path} ({type(exc).__name__})")
                continue
        kept.append(item)
    return kept, skipped, examples


def _manifest_items(path: Path, split: str | None, domain: str | None) -> list[ImageItem]:
    refs = manifest.read(path, (split,) if split else None).refs
    items: list[ImageItem] = []
    for ref in refs:
        if domain is not None and ref.domain != domain:
            continue
        if ref.frame_paths is not None:
            for i, frame in enumerate(ref.frame_paths):
                if frame is not None:
                    label = ref.frame_labels[i] if ref.frame_labels else ref.label
                    items.append(ImageItem(frame, label, video=ref.sample_id, subject=ref.subject))
        elif ref.video is not None:
            count = probe(ref.video).frames or len(read_video(ref.video))  # decode when the header is silent
            origin = {"video": ref.sample_id, "subject": ref.subject}
            items += [ImageItem(ref.video, ref.label, (i,), **origin) for i in range(count)]
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
        origin = {"video": entry.get("ref_id", entry["id"]), "subject": entry.get("subject", "")}
        for k, label in enumerate(shards[number][entry["offset"]].tolist()):
            items.append(ImageItem(shard_file, int(label), (entry["offset"], k), **origin))
    return items


class ImageReader:
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
                try:
                    with Image.open(item.path) as image:
                        out.append(rgb8(image))
                except OSError as exc:  # a file that lists but does not decode (truncated)
                    raise FidError(f"{item.path}: cannot decode the image ({exc})") from None
            elif item.path.suffix == ".pt":
                shard = self._get(item.path, lambda p: torch.load(p, mmap=True, weights_only=True))
                out.append(shard["video"][item.index].permute(1, 2, 0).numpy())
            else:
                frames = self._get(item.path, read_video)
                if item.index[0] >= len(frames):
                    raise MediaError(f"{item.path}: frame {item.index[0]} listed, {len(frames)} decoded")
                out.append(frames[item.index[0]])
        return out


SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def rgb8(image: Image.Image) -> np.ndarray:
    """uint8 ``[H, W, 3]`` of a PIL image. 8-bit modes convert as pytorch-fid does (``convert("RGB")``); a
    16-bit grayscale image (or 32-bit integer mode holding 16-bit values) is scaled to 8 bits (x / 257)
    instead of being clipped at 255 as ``convert`` would."""
    if image.mode in SIXTEEN_BIT_MODES or image.mode == "I":
        values = np.asarray(image).astype(np.float64)
        scale = 257.0 if image.mode != "I" or values.max(initial=0) > 255 else 1.0
        gray = np.clip(np.rint(values / scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"))


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
