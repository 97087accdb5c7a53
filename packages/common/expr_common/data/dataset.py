"""The prepared-sample cache (its on-disk format) and the torch Dataset that training reads from it.

Cache folder::

    index.json        {"format", "config_hash", "config", "roots", "shards": [{file, samples, bytes}],
                       "samples": [{id, ref_id, source, dataset, domain, split, subject, label, has_audio,
                                    has_video, shard, offset, frames, span}], "summary": {...}}
    shard_00000.pt    torch.save of a dict of stacked tensors, N = samples in the shard:
                        video        uint8   [N, K, 3, S, S]   RGB face crops
                        audio        float16 [N, 1, F, T]      natural-log mel power (zeros: no audio)
                        label        int64   [N]               ABAW class, -1 unlabelled (test)
                        has_audio    bool    [N]
                        has_video    bool    [N]
                        frame_labels int64   [N, K]            label of each sampled frame
                        frame_index  int64   [N, K]            0-based frame numbers of the sampled frames
                        span         int64   [N, 2]            the window's frames [start, stop)
                        span_labels  int8    [N, L]            labels of every frame of the span, -1 padded

Frame numbers are 0-based positions in the reference's frame sequence (Aff-Wild2 ``00001.jpg`` is 0).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from expr_common.errors import MissingDataError
from expr_common.config import from_dict
from expr_common.data.audio import SpecAugment
from expr_common.data.config import AugmentConfig, PreprocessConfig
from expr_common.data.video_augment import ClipAugment
from expr_common.labels import NUM_CLASSES
from expr_common.atomic import write_json
from expr_common.seeding import make_generator, worker_init_fn

INDEX_FILE = "index.json"
SHARD_NAME = "shard_{:05d}.pt"
CACHE_FORMAT = 1
# What a shard holds per sample (see the module docstring); batches add "index" and the id lists.
_SHARD_KEYS = ("video", "audio", "label", "has_audio", "has_video", "frame_labels", "frame_index", "span")
_SHARD_KEYS += ("span_labels",)
_TENSOR_KEYS = (*_SHARD_KEYS[:-1], "index")


class ShardWriter:
    """Buffers prepared samples and writes them ``shard_size`` at a time."""

    def __init__(self, root: Path, shard_size: int):
        self.root, self.shard_size = Path(root), shard_size
        self.root.mkdir(parents=True, exist_ok=True)
        self.buffer: list[dict[str, Any]] = []
        self.entries: list[dict[str, Any]] = []
        self.shards: list[dict[str, Any]] = []

    def add(self, sample: dict[str, Any]) -> None:
        self.buffer.append(sample)
        if len(self.buffer) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        samples, self.buffer = self.buffer, []
        name = SHARD_NAME.format(len(self.shards))
        span_len = max(1, max(len(s["span_labels"]) for s in samples))
        span_labels = torch.full((len(samples), span_len), -1, dtype=torch.int8)
        for row, s in enumerate(samples):
            span_labels[row, : len(s["span_labels"])] = torch.tensor(s["span_labels"], dtype=torch.int8)
        tensors = {
            "video": torch.from_numpy(np.stack([s["video"] for s in samples])),
            "audio": torch.stack([s["audio"] for s in samples]).to(torch.float16),
            "label": torch.tensor([s["label"] for s in samples], dtype=torch.int64),
            "has_audio": torch.tensor([s["has_audio"] for s in samples], dtype=torch.bool),
            "has_video": torch.tensor([s["has_video"] for s in samples], dtype=torch.bool),
            "frame_labels": torch.tensor([s["frame_labels"] for s in samples], dtype=torch.int64),
            "frame_index": torch.tensor([s["frame_index"] for s in samples], dtype=torch.int64),
            "span": torch.tensor([s["span"] for s in samples], dtype=torch.int64),
            "span_labels": span_labels,
        }
        torch.save(tensors, self.root / name)
        for offset, s in enumerate(samples):
            self.entries.append(
                {
                    **s["meta"],
                    "label": s["label"],
                    "has_audio": bool(s["has_audio"]),
                    "has_video": bool(s["has_video"]),
                    "shard": len(self.shards),
                    "offset": offset,
                    "frames": list(s["frame_index"]),
                    "span": list(s["span"]),
                }
            )
        self.shards.append(
            {"file": name, "samples": len(samples), "bytes": (self.root / name).stat().st_size}
        )

    def close(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        self.flush()
        return self.entries, self.shards


def write_index(root: Path, index: dict[str, Any]) -> None:
    """Written last: a folder without a complete index is never taken for a cache."""
    write_json(Path(root) / INDEX_FILE, {"format": CACHE_FORMAT, **index}, indent=None)


def read_index(root: str | Path) -> dict[str, Any] | None:
    """The index of a complete cache, or None when it is missing, corrupt, of another format, or a shard
    is missing or has another size than when it was written."""
    root = Path(root)
    try:
        index = json.loads((root / INDEX_FILE).read_text(encoding="utf-8"))
        if index.get("format") != CACHE_FORMAT:
            return None
        for shard in index["shards"]:
            if (root / shard["file"]).stat().st_size != shard["bytes"]:
                return None
        if not isinstance(index["samples"], list) or "config_hash" not in index:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return index


def is_cache_dir(path: Path) -> bool:
    """Safe to replace: empty, or holding only what a prepare run writes."""
    return all(p.name == INDEX_FILE or p.name.startswith("shard_") for p in Path(path).iterdir())


def normalize_video(video: torch.Tensor) -> torch.Tensor:
    """uint8 frames -> float32 in [-1, 1] (the range of the GAN's tanh output); call it on the device,
    after the loader, so workers ship 4x fewer bytes."""
    return video.float().div_(127.5).sub_(1.0)


def spec_augment_of(augment: AugmentConfig, cache_config: dict[str, Any]) -> SpecAugment:
    """The log-mel augmentation of ``augment`` for a cache's preprocessing (the shift is a share of its T)."""
    pre = cache_config.get("preprocess", {})
    steps = int(round(pre.get("window_seconds", 2.0) * 1000 / pre.get("hop_ms", 10.0)))
    return SpecAugment(
        augment.freq_mask_param, augment.freq_masks, augment.time_mask_param, augment.time_masks,
        augment.gain_db, int(round(augment.time_shift * steps)),
    )  # fmt: skip


class CachedClips(Dataset):
    """Samples of a prepared cache as the dict of docs/design.md ("Samples and batches"): ``video`` uint8
    ``[K, C, H, W]`` (see :func:`normalize_video`), ``audio`` float32 ``[1, F, T]``, ``label`` int64,
    ``has_audio`` / ``has_video`` bool, and for per-frame scoring ``frame_labels`` / ``frame_index`` ``[K]``,
    ``span`` [2], ``span_labels`` [L], ``sample_id``, ``ref_id``, ``index`` (position in this dataset).

    ``split`` / ``domain`` / ``source`` filter (a name or a list of names). ``train=True`` applies
    ``augment``: frequency masking to samples that have audio, the clip augmentation to those with video.
    Shards are memory-mapped on first use, separately in each DataLoader worker."""

    def __init__(
        self,
        root: str | Path,
        *,
        split: str | Sequence[str] | None = None,
        domain: str | Sequence[str] | None = None,
        source: str | Sequence[str] | None = None,
        labelled_only: bool = False,
        train: bool = False,
        augment: AugmentConfig | None = None,
    ):
        self.root = Path(root)
        index = read_index(self.root)
        if index is None:
            raise MissingDataError(f"{self.root} holds no complete cache: run `expr-data prepare` first")
        wanted = {"split": split, "domain": domain, "source": source}
        wanted = {k: {v} if isinstance(v, str) else set(v) for k, v in wanted.items() if v is not None}
        self.entries = [
            e
            for e in index["samples"]
            if all(e[k] in v for k, v in wanted.items()) and not (labelled_only and e["label"] < 0)
        ]
        self.config: dict[str, Any] = index["config"]
        self.shard_files = [self.root / s["file"] for s in index["shards"]]
        self.labels = torch.tensor([e["label"] for e in self.entries], dtype=torch.int64)
        augment = augment or AugmentConfig()
        spec_augment = spec_augment_of(augment, self.config)
        self.mask = spec_augment if train and spec_augment.active else None
        clip_augment = ClipAugment(augment)
        self.clip_augment = clip_augment if train and clip_augment.active else None
        self._shard_of = torch.tensor([e["shard"] for e in self.entries], dtype=torch.int64)
        self._offset = torch.tensor([e["offset"] for e in self.entries], dtype=torch.int64)
        self._shards: dict[int, dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def preprocess(self) -> PreprocessConfig:
        """How the cache was made (K, image size, mel settings): what models must be built for."""
        return from_dict(self.config["preprocess"], PreprocessConfig, f"{self.root / INDEX_FILE}")

    def _shard(self, number: int) -> dict[str, torch.Tensor]:
        if number not in self._shards:
            # mmap: only the pages a worker touches are read, and the OS shares them between workers.
            self._shards[number] = torch.load(self.shard_files[number], mmap=True, weights_only=True)
        return self._shards[number]

    def __getitem__(self, i: int) -> dict[str, Any]:
        entry = self.entries[i]
        tensors, o = self._shard(entry["shard"]), entry["offset"]
        item: dict[str, Any] = {key: tensors[key][o].clone() for key in _SHARD_KEYS}  # no view pins the mmap
        start, stop = entry["span"]
        item["span_labels"] = item["span_labels"][: stop - start].long()
        item["audio"] = item["audio"].float()
        if self.mask is not None and entry["has_audio"]:
            item["audio"] = self.mask(item["audio"])
        if self.clip_augment is not None and entry["has_video"]:
            item["video"] = self.clip_augment(item["video"])
        item.update(index=torch.tensor(i), sample_id=entry["id"], ref_id=entry["ref_id"])
        return item

    def __getitems__(self, indices: Sequence[int]) -> dict[str, Any]:
        """A whole batch at once (the DataLoader calls this when it exists): one gather per shard instead of
        a view per sample, and one frequency-masking call; :func:`collate` passes the result through."""
        where = torch.as_tensor(indices, dtype=torch.int64)
        shard_of, offset = self._shard_of[where], self._offset[where]
        parts: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {k: [] for k in _SHARD_KEYS}
        for number in shard_of.unique().tolist():
            rows = (shard_of == number).nonzero().squeeze(1)
            tensors = self._shard(number)
            for key in _SHARD_KEYS:
                # index_select, not tensor[idx]: advanced indexing of uint8 [N, K, C, H, W] is ~10x slower
                parts[key].append((rows, tensors[key].index_select(0, offset[rows])))
        # Back to the requested order: concatenate the shards' pieces, then one index_select.
        order = torch.argsort(torch.cat([rows for rows, _ in parts["video"]]))
        batch: dict[str, Any] = {}
        for key, pieces in parts.items():
            values = [v for _, v in pieces]
            if key == "span_labels":  # each shard pads spans to its own longest: pad to the widest
                width = max(v.shape[1] for v in values)
                values = [torch.nn.functional.pad(v, (0, width - v.shape[1]), value=-1) for v in values]
            batch[key] = values[0] if len(values) == 1 else torch.cat(values).index_select(0, order)
        span = batch["span"]
        longest = max(1, int((span[:, 1] - span[:, 0]).max()))
        batch["span_labels"] = batch["span_labels"][:, :longest].long()
        batch["audio"] = batch["audio"].float()
        if self.mask is not None and bool(batch["has_audio"].any()):
            has = batch["has_audio"]
            batch["audio"][has] = self.mask(batch["audio"][has])
        if self.clip_augment is not None and bool(batch["has_video"].any()):
            has = batch["has_video"]
            batch["video"][has] = self.clip_augment(batch["video"][has])
        batch["index"] = where
        batch["sample_id"] = [self.entries[i]["id"] for i in indices]
        batch["ref_id"] = [self.entries[i]["ref_id"] for i in indices]
        return batch

    def span_labels(self, i: int) -> torch.Tensor:
        """The labels of every frame of sample ``i``'s span (per-frame scoring), without its pixels."""
        entry = self.entries[i]
        start, stop = entry["span"]
        return self._shard(entry["shard"])["span_labels"][entry["offset"], : stop - start].long()

    def class_counts(self) -> torch.Tensor:
        """Samples per ABAW class (unlabelled ones not counted)."""
        return torch.bincount(self.labels[self.labels >= 0], minlength=NUM_CLASSES)


def collate(items: list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
    """Stacks items into ``[B, ...]`` tensors; ``span_labels`` padded with -1 to the longest span; ids as
    lists. A batch that :meth:`CachedClips.__getitems__` already assembled passes through."""
    if isinstance(items, dict):
        return items
    batch: dict[str, Any] = {k: torch.stack([item[k] for item in items]) for k in _TENSOR_KEYS}
    longest = max(1, max(len(item["span_labels"]) for item in items))
    span_labels = torch.full((len(items), longest), -1, dtype=torch.int64)
    for row, item in enumerate(items):
        span_labels[row, : len(item["span_labels"])] = item["span_labels"]
    batch["span_labels"] = span_labels
    batch["sample_id"] = [item["sample_id"] for item in items]
    batch["ref_id"] = [item["ref_id"] for item in items]
    if all("weight" in item for item in items):  # per-sample loss weights (extra training data)
        batch["weight"] = torch.stack(
            [torch.as_tensor(item["weight"], dtype=torch.float32) for item in items]
        )
    return batch


def balanced_sampler(
    dataset: CachedClips, *, seed: int = 0, num_samples: int | None = None
) -> WeightedRandomSampler:
    """Draws every present class equally often (with replacement), deterministically for a ``seed``;
    unlabelled samples are never drawn."""
    counts = dataset.class_counts().double()
    labelled = dataset.labels >= 0
    weights = torch.zeros(len(dataset), dtype=torch.float64)
    weights[labelled] = 1.0 / counts[dataset.labels[labelled]]
    if not labelled.any():
        raise ValueError("a class-balanced sampler needs labelled samples")
    return WeightedRandomSampler(
        weights, num_samples or len(dataset), replacement=True, generator=make_generator(seed)
    )


def make_loader(
    dataset: CachedClips,
    batch_size: int,
    *,
    workers: int = 2,
    shuffle: bool = False,
    balanced: bool = False,
    seed: int = 0,
    drop_last: bool = False,
    pin_memory: bool | None = None,
    multiprocessing_context: str | None = None,
    persistent_workers: bool | None = None,
) -> DataLoader:
    """A DataLoader over the cache with :func:`collate`, seeded shuffling or class-balanced sampling.
    ``pin_memory`` unset = pinned when CUDA is available (page-locked batches copy to the GPU faster and
    asynchronously); callers that know their device pass it."""
    sampler = balanced_sampler(dataset, seed=seed) if balanced else None
    # Persistent by default (one loader, many epochs). A caller that makes a loader per epoch must
    # pass False, or every epoch's idle workers (and their memory) live as long as the loader object.
    persistent = workers > 0 if persistent_workers is None else (persistent_workers and workers > 0)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        worker_init_fn=worker_init_fn,
        generator=make_generator(seed),
        persistent_workers=persistent,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        multiprocessing_context=multiprocessing_context if workers > 0 else None,
    )
