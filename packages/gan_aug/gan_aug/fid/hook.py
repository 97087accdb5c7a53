"""The trainer's default FID hook: KID and FID of G_ema's Aff-Wild2-style faces against the cached real
Aff-Wild2 training frames, every ``train.fid_every`` steps.

Real features are extracted once (and cached on disk by ``gan_aug.fid.features``); the fakes use fixed
latents and the real subsample's own labels, so successive evaluations differ only by the generator. KID
comes first in the returned metrics because the trainer keeps ``best.pt`` by the first one: it is unbiased
at the small N a training run can afford, where FID's bias depends on N (METHOD.md, "FID conventions").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn

from expr_common.errors import DataError
from expr_common.paths import repo_root
from gan_aug.fid.features import FeatureExtractor, source_features
from gan_aug.fid.metrics import fid_from_features, kid_from_features
from gan_aug.fid.sources import open_source, subsample
from gan_aug.fid.weights import FidWeightsError
from gan_aug.run_config import GanTrainConfig
from gan_aug.sampling import STREAM_GRID, TRAIN_SPLIT, step_generator
from gan_aug.trainer import FidUnavailableError


def default_fid_hook(
    config: GanTrainConfig, cache_path: str | Path, accelerator: Accelerator, batch_size: int = 50
) -> Callable[[nn.Module, int], dict[str, float]]:
    """A hook ``(G_ema, step) -> {"kid": ..., "kid_std": ..., "fid": ..., "fid_n": ...}``; raises
    :class:`FidUnavailableError` now, not mid-run, when the Inception weights are missing."""
    try:
        extractor = FeatureExtractor(device=accelerator.device, batch_size=batch_size)
    except FidWeightsError as exc:
        raise FidUnavailableError(f"train.fid_every={config.train.fid_every}: {exc}") from None
    target = config.target_domain  # the style `generate` asks for, so the one worth measuring
    if target not in config.model.domains:
        raise FidUnavailableError(f"the FID hook measures {target!r}, which the training data does not have")
    real = open_source(cache_path, split=TRAIN_SPLIT, domain=target)
    labelled = [item for item in real.items if 0 <= item.label < config.model.num_classes]
    if len(labelled) < 2:
        raise DataError(f"FID hook: {cache_path} has fewer than 2 labelled {target} training frames")
    items = subsample(labelled, config.train.fid_samples, config.train.seed)
    real_features, _ = source_features(items, extractor, repo_root() / "runs" / "fid_cache", "real features")
    n = len(items)
    # Fakes: the real subsample's class mix, in the target domain, from latents fixed for the whole run.
    y = torch.tensor([item.label for item in items], dtype=torch.int64)
    d = torch.full_like(y, config.model.domain_index(target))
    z = torch.randn(
        n, config.model.generator.z_dim, generator=step_generator(config.train.seed, 1, 0, STREAM_GRID)
    )

    @torch.no_grad()
    def hook(generator: nn.Module, step: int) -> dict[str, float]:
        was_training = generator.training
        generator.eval()
        device = next(generator.parameters()).device
        chunks = []
        for start in range(0, n, batch_size):
            part = slice(start, start + batch_size)
            images = generator(z[part].to(device), y[part].to(device), d[part].to(device))
            chunks.append(extractor.features(images.float(), value_range=(-1.0, 1.0)))
        generator.train(was_training)
        fake_features = np.concatenate(chunks)
        kid = kid_from_features(real_features.features, fake_features, seed=config.train.seed)
        fid = fid_from_features(real_features.features, fake_features)
        return {"kid": kid["mean"], "kid_std": kid["std"], "fid": fid, "fid_n": float(n)}

    return hook
