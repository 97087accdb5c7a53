"""Extra training data: GAN output (``--with-synthetic``) or the source datasets' own samples
(``--with-source-real``), joined to the main training split under a per-class policy.

The policy (``ExtraTrainData``): fill each class up to ``target_share`` of the largest real class, never
more than ``max_ratio`` extra samples per real sample of that class, and weigh extra samples ``weight`` in
the loss. Both kinds of extra data go through the same policy, so "+synthetic" and "+source-real" differ
only in where the added faces come from. Extra data is used for training only, never for validation.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from expr_common.config import ConfigError
from expr_common.data.config import DataConfig, SourceConfig, load_data_config
from expr_common.data.dataset import CachedClips
from expr_common.data.manifest import manifest_path
from expr_common.data.prepare import prepare_cached
from expr_common.labels import CLASS_NAMES, NUM_CLASSES
from expr_common.paths import resolve_path
from recognizer.run_config import ExtraTrainData, RecognizerConfig


def extra_data_config(extra: ExtraTrainData, main: DataConfig) -> DataConfig:
    """The data config of an extra set. A ``manifest`` (``gan-aug generate`` output) is read with the main
    config's preprocessing and augmentation, so its clips match the main ones in K, size and mel settings;
    its cache sits under the main cache's folder (:func:`extra_cache_root`), never inside the input folder."""
    if extra.manifest is None:
        return load_data_config(resolve_path(extra.data), extra.overrides)
    csv = manifest_path(resolve_path(extra.manifest))
    source = SourceConfig(name=extra.name, format="manifest", root=str(csv), faces="crops")
    cache = replace(main.cache, root=str(extra_cache_root(extra.name, csv, main)))
    return DataConfig(
        name=f"{main.name}-{extra.name}",
        sources=[source],
        preprocess=main.preprocess,
        augment=main.augment,
        cache=cache,
    )


def extra_cache_root(name: str, csv: Path, main: DataConfig) -> Path:
    """Where an extra manifest's cache goes: beside the main cache, one folder per manifest (named by a hash
    of its absolute path), so the folder a user hands over (``--synthetic``) is only read."""
    digest = hashlib.sha256(str(csv.absolute()).encode()).hexdigest()[:12]
    return resolve_path(main.cache.root).parent / f"{Path(main.cache.root).name}-{name}-{digest}"


def select_extra(
    real_counts: torch.Tensor, extra_labels: torch.Tensor, extra: ExtraTrainData, seed: int
) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Indices of the extra samples the policy admits (a seeded random subset per class) and a per-class
    table: real, available, target and used counts."""
    real_counts = real_counts.long()
    largest = int(real_counts.max()) if len(real_counts) else 0
    generator = torch.Generator().manual_seed(seed)
    chosen: list[torch.Tensor] = []
    table: list[dict[str, Any]] = []
    for c in range(NUM_CLASSES):
        pool = (extra_labels == c).nonzero().squeeze(1)
        real = int(real_counts[c])
        want = len(pool)
        if extra.target_share is not None:
            want = min(want, max(0, math.ceil(extra.target_share * largest) - real))
        if extra.max_ratio is not None:
            # A class without a single real sample is capped as if it had one.
            want = min(want, math.floor(extra.max_ratio * max(real, 1)))
        picked = pool[torch.randperm(len(pool), generator=generator)[:want]].sort().values
        chosen.append(picked)
        table.append({"class": CLASS_NAMES[c], "real": real, "available": len(pool), "used": len(picked)})
    return torch.cat(chosen) if chosen else torch.zeros(0, dtype=torch.long), table


class TrainingMix(Dataset):
    """The main training split plus admitted extra samples; every item carries its loss ``weight``.
    ``labels`` / ``class_counts`` cover the whole mix, so the class-balanced sampler draws from it all."""

    def __init__(self, main: CachedClips, extras: list[tuple[CachedClips, torch.Tensor, float]]):
        self.parts: list[tuple[CachedClips, torch.Tensor, float]] = [
            (main, torch.arange(len(main)), 1.0),
            *extras,
        ]
        self.offsets = [0]
        for _, rows, _ in self.parts:
            self.offsets.append(self.offsets[-1] + len(rows))
        self.labels = torch.cat([dataset.labels[rows] for dataset, rows, _ in self.parts])

    def __len__(self) -> int:
        return self.offsets[-1]

    def class_counts(self) -> torch.Tensor:
        labelled = self.labels[self.labels >= 0]
        return torch.bincount(labelled, minlength=NUM_CLASSES)

    def __getitem__(self, i: int) -> dict[str, Any]:
        part = bisect.bisect_right(self.offsets, i) - 1  # the part whose [offset, next offset) holds i
        dataset, rows, weight = self.parts[part]
        item = dataset[int(rows[i - self.offsets[part]])]
        item["index"] = torch.tensor(i)
        item["weight"] = torch.tensor(weight)
        return item


@dataclass
class ExtraPart:
    """One extra training set as it joins the main split: its cache, the rows its policy admitted, their
    loss weight and the summary written to ``extra_data.json``."""

    dataset: CachedClips
    rows: torch.Tensor
    weight: float
    summary: dict[str, Any]


def open_extra(
    extra: ExtraTrainData, main: DataConfig, real_counts: torch.Tensor, seed: int, accelerator: Any = None
) -> ExtraPart:
    """Prepare (or reuse) an extra set's cache, open its labelled training samples and admit them under
    its policy against the main split's ``real_counts``: the one call the trainer makes per extra set."""
    config = extra_data_config(extra, main)
    cache = Path(prepare_cached(config, accelerator).path)
    dataset = CachedClips(
        cache, split="train", source=extra.sources, labelled_only=True, train=True, augment=main.augment
    )
    rows, table = select_extra(real_counts, dataset.labels, extra, seed)
    return ExtraPart(dataset, rows, extra.weight, extra_summary(extra.name, cache, table, extra))


def extra_summary(name: str, cache: Path, table: list[dict[str, Any]], extra: ExtraTrainData) -> dict:
    return {
        "name": name,
        "cache": str(cache),
        "weight": extra.weight,
        "target_share": extra.target_share,
        "max_ratio": extra.max_ratio,
        "per_class": table,
        "used": sum(row["used"] for row in table),
    }


def with_extra_flags(
    cfg: RecognizerConfig,
    *,
    synthetic: bool = False,
    synthetic_dir: str | None = None,
    source_real: bool = False,
    augmented: bool = False,
) -> RecognizerConfig:
    """``cfg`` with the extra sets that ``--with-synthetic [--synthetic DIR]`` / ``--with-source-real`` /
    ``--with-augmented-copies`` ask for appended to ``extra_train`` (their policies come from
    ``cfg.extra_policies``; the copies take the synthetic one, so they match it class by class)."""
    policies, extras = cfg.extra_policies, list(cfg.extra_train)
    if synthetic_dir is not None and not synthetic:
        raise ConfigError("--synthetic DIR needs --with-synthetic")
    if synthetic:
        folder = synthetic_dir or policies.synthetic_dir
        if not folder:
            raise ConfigError(
                "--with-synthetic needs the `gan-aug generate` folder: --synthetic DIR or "
                "extra_policies.synthetic_dir in the config"
            )
        extras.append(replace(policies.synthetic, manifest=str(folder), data=None))
    if source_real:
        template = policies.source_real
        extras.append(
            replace(
                template,
                data=cfg.data,
                overrides=list(cfg.data_overrides),
                manifest=None,
                sources=list(policies.source_real_sources),
            )
        )
    if augmented:
        own = {"data": cfg.data, "overrides": list(cfg.data_overrides), "manifest": None}
        extras.append(replace(policies.synthetic, name="augmented", sources=cfg.train.train_sources, **own))
    return replace(cfg, extra_train=extras)
