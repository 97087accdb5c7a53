"""Training images for the GAN: every labelled frame of the prepared caches as one (image, class, domain),
drawn balanced over (class, domain) cells.

A cached sample holds K frames of one clip; the GAN treats each as an image of its own. Aff-Wild2 labels
frames one by one (``frame_labels``, -1 = unlabelled and never used); AFEW and CK+ clips carry one label.
Batches are a pure function of (seed, batch number, process), so a resumed run reads the very batches an
uninterrupted one would, without any sampler state in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from expr_common.data.dataset import CachedClips, normalize_video
from expr_common.errors import DataError
from expr_common.logs import get_logger
from gan_aug.config import DOMAINS, domain_index, domain_table

log = get_logger("gan")
TRAIN_SPLIT = "train"  # the GAN never sees validation or test frames: the recognizer is scored on them
# Independent random streams per (seed, step): mixing the stream number in keeps them uncorrelated.
STREAM_DATA, STREAM_NOISE, STREAM_GRID, STREAM_TEACHER = 0, 1, 2, 3


def step_generator(seed: int, step: int, rank: int = 0, stream: int = STREAM_NOISE) -> torch.Generator:
    """A CPU generator for one (seed, step, process, stream); SeedSequence mixes the four into one seed."""
    mixed = np.random.SeedSequence([seed, step, rank, stream]).generate_state(2, np.uint32)
    generator = torch.Generator()
    generator.manual_seed(int(mixed[0]) << 32 | int(mixed[1]))
    return generator


@dataclass
class FrameTable:
    """Index over the usable frames: row i is frame ``frame[i]`` of cached sample ``sample[i]``."""

    clips: CachedClips  # the training split of the cache, restricted to the GAN's domains
    sample: torch.Tensor  # [N] int64, position in ``clips``
    frame: torch.Tensor  # [N] int64, 0..K-1
    label: torch.Tensor  # [N] int64, ABAW class
    domain: torch.Tensor  # [N] int64, index into ``domains``
    clip_label: torch.Tensor  # [S] int64, label of each cached sample (-1 where only some frames count)
    clip_domain: torch.Tensor  # [S] int64
    num_classes: int
    domains: tuple[str, ...] = DOMAINS  # the domain table of this data (gan_aug.config.domain_table)

    def __len__(self) -> int:
        return int(self.sample.numel())

    @property
    def num_domains(self) -> int:
        return len(self.domains)

    def cell_counts(self) -> torch.Tensor:
        """Frames per (class, domain): [C, D]."""
        flat = self.label * self.num_domains + self.domain
        counts = torch.bincount(flat, minlength=self.num_classes * self.num_domains)
        return counts.view(self.num_classes, self.num_domains)

    def clip_counts(self) -> torch.Tensor:
        """Labelled cached samples (clips) per (class, domain): [C, D]."""
        keep = self.clip_label >= 0
        flat = self.clip_label[keep] * self.num_domains + self.clip_domain[keep]
        counts = torch.bincount(flat, minlength=self.num_classes * self.num_domains)
        return counts.view(self.num_classes, self.num_domains)

    def images(self, rows: torch.Tensor, resolution: int) -> torch.Tensor:
        """Frames of ``rows`` as float [B, 3, R, R] in [-1, 1], resized when the cache has another size."""
        frames = [self.clips[int(s)]["video"][int(k)] for s, k in zip(self.sample[rows], self.frame[rows])]
        return resize_faces(normalize_video(torch.stack(frames)), resolution)  # [B, 3, S, S] -> R


def resize_faces(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Faces [B, 3, S, S] in [-1, 1] at the GAN's ``resolution`` (unchanged when S already is): the one
    resize of training, generation and FID. Antialiased: a plain bilinear downscale aliases, and D would
    learn the aliasing as "real"."""
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True).clamp_(-1.0, 1.0)


def build_frame_table(
    cache_root: str | Path, num_classes: int, domains: Sequence[str] | None = None
) -> FrameTable:
    """The frame table of a prepared cache's training split, over every domain in it except GAN output
    (``synthetic``); its domain table is :func:`~gan_aug.config.domain_table` of them, or ``domains`` (a
    resumed GAN's own table, which the data may not go beyond: its indices would mean other styles)."""
    everything = CachedClips(cache_root, split=TRAIN_SPLIT)
    present = domain_table(e["domain"] for e in everything.entries)
    if domains is not None:
        unknown = [d for d in present if d not in domains]
        if unknown:
            raise DataError(
                f"the cache {cache_root} has domains {', '.join(unknown)} that this GAN was not trained on "
                f"(its domains: {', '.join(domains)}): start a new run for them"
            )
    domains = tuple(domains if domains is not None else present)
    clips = CachedClips(cache_root, split=TRAIN_SPLIT, domain=list(domains))
    if len(clips) < len(everything):
        log.warning(
            "GAN training leaves out its own output: %d synthetic samples", len(everything) - len(clips)
        )
    sample, frame, label, domain, clip_label, clip_domain = [], [], [], [], [], []
    for i, entry in enumerate(clips.entries):
        d = domain_index(entry["domain"], domains)
        clip_domain.append(d)
        clip_label.append(int(entry["label"]))
        if not entry["has_video"]:
            continue
        item = clips[i]
        K = item["video"].shape[0]
        # Aff-Wild2 annotates each frame; a clip dataset's frames all show the clip's expression.
        per_frame = item["frame_labels"] if entry["domain"] == "affwild2" else item["label"].expand(K)
        for k, y in enumerate(per_frame.tolist()):
            if 0 <= y < num_classes:
                sample.append(i)
                frame.append(k)
                label.append(y)
                domain.append(d)
    if not sample:
        raise DataError(
            f"the cache {cache_root} has no labelled training frames (domains: {', '.join(domains)})"
        )

    def as_long(values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.int64)

    return FrameTable(
        clips,
        as_long(sample),
        as_long(frame),
        as_long(label),
        as_long(domain),
        as_long(clip_label),
        as_long(clip_domain),
        num_classes,
        domains,
    )


class CellSampler:
    """Draws a (class, domain) cell uniformly among the cells that have frames, then a frame uniformly
    within it: rare classes and the small CK+ set weigh as much as Aff-Wild2's Neutral."""

    def __init__(self, table: FrameTable) -> None:
        self.num_domains = table.num_domains
        cell = table.label * self.num_domains + table.domain  # [N]
        order = torch.argsort(cell, stable=True)  # rows grouped by cell, in table order within one
        self.rows = order
        self.cells, self.sizes = torch.unique_consecutive(cell[order], return_counts=True)
        self.starts = torch.cumsum(self.sizes, 0) - self.sizes

    def draw_cells(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(class [n], domain [n]) of n uniformly drawn non-empty cells (also the labels of fakes)."""
        picks = torch.randint(len(self.cells), (n,), generator=generator)
        return self.cells[picks] // self.num_domains, self.cells[picks] % self.num_domains

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Table rows [n]: a cell per row, then a frame within the cell."""
        picks = torch.randint(len(self.cells), (n,), generator=generator)
        offsets = (torch.rand(n, generator=generator, dtype=torch.float64) * self.sizes[picks]).long()
        offsets = torch.minimum(offsets, self.sizes[picks] - 1)
        return self.rows[self.starts[picks] + offsets]


class FrameBatches(IterableDataset):
    """Batches number ``start``, ``start + 1``, ... as dicts ``image`` [B, 3, R, R], ``label`` [B],
    ``domain`` [B]. Worker w of n makes batches w, w + n, ...; the DataLoader's round robin over workers
    then returns them in order, so any worker count gives the same stream."""

    def __init__(
        self,
        table: FrameTable,
        batch_size: int,
        resolution: int,
        seed: int,
        rank: int,
        start: int = 0,
        stream: int = STREAM_DATA,
    ) -> None:
        self.table, self.sampler = table, CellSampler(table)
        self.batch_size, self.resolution = batch_size, resolution
        self.seed, self.rank, self.start, self.stream = seed, rank, start, stream

    def batch(self, number: int) -> dict[str, torch.Tensor]:
        rows = self.sampler.draw(self.batch_size, step_generator(self.seed, number, self.rank, self.stream))
        return {
            "image": self.table.images(rows, self.resolution),
            "label": self.table.label[rows],
            "domain": self.table.domain[rows],
        }

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        number = self.start + worker
        while True:
            yield self.batch(number)
            number += workers


def batch_loader(batches: FrameBatches, workers: int) -> DataLoader:
    """An endless loader over ``batches`` (already batched: ``batch_size=None``)."""
    return DataLoader(batches, batch_size=None, num_workers=workers, prefetch_factor=2 if workers else None)
