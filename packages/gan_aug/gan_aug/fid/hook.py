"""The trainer's default FID hook: KID and FID of G_ema's Aff-Wild2-style faces (drawn, or for the editing
GAN other real Aff-Wild2 frames edited) against the cached real Aff-Wild2 training frames, every
``train.fid_every`` steps.

Real features are extracted once (and cached on disk by ``gan_aug.fid.features``); the fakes use fixed
latents and the real subsample's own labels, so successive evaluations differ only by the generator. KID
comes first in the returned metrics because the trainer keeps ``best.pt`` by the first one: it is unbiased
at the small N a training run can afford, where FID's bias depends on N (docs/method.md, "FID conventions").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn

from expr_common.data.dataset import normalize_video
from expr_common.errors import DataError
from expr_common.paths import repo_root
from gan_aug.edit_trainer import other_classes
from gan_aug.fid.features import FeatureExtractor, source_features
from gan_aug.fid.metrics import fid_from_features, kid_from_features
from gan_aug.fid.sources import ImageReader, open_source, subsample
from gan_aug.fid.weights import FidWeightsError
from gan_aug.run_config import GanTrainConfig
from gan_aug.sampling import STREAM_GRID, TRAIN_SPLIT, resize_faces, step_generator
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
    edit = config.model.kind == "edit"
    if edit:  # the edited faces come from other videos than the reference frames
        labelled, sources = video_halves(labelled, config.train.seed)
        if len(labelled) < 2 or len(sources) < 2:
            raise DataError(f"FID hook: {cache_path} has too few {target} training videos for two halves")
    items = subsample(labelled, config.train.fid_samples, config.train.seed)
    real_features, _ = source_features(items, extractor, repo_root() / "runs" / "fid_cache", "real features")
    n = len(items)
    noise = step_generator(config.train.seed, 1, 0, STREAM_GRID)
    # Fakes: the real subsample's class mix, in the target domain, from latents fixed for the whole run;
    # or, editing, as many real target frames of other videos, each edited to a class it is not (so the
    # two sides' class mixes differ by design: the edits are what the recognizer would be given).
    y = torch.tensor([item.label for item in items], dtype=torch.int64)
    d = torch.full_like(y, config.model.domain_index(target))
    if edit:
        chosen = subsample(sources, n, config.train.seed)
        faces = source_faces(chosen, config.model.generator.resolution)
        own = torch.tensor([item.label for item in chosen], dtype=torch.int64)
        inputs = (faces, other_classes(own, torch.arange(config.model.num_classes), noise), d[: len(faces)])
    else:
        inputs = (torch.randn(n, config.model.generator.z_dim, generator=noise), y, d)

    @torch.no_grad()
    def hook(generator: nn.Module, step: int) -> dict[str, float]:
        was_training = generator.training
        generator.eval()
        device = next(generator.parameters()).device
        chunks = []
        for start in range(0, len(inputs[0]), batch_size):
            part = slice(start, start + batch_size)
            images = generator(*(x[part].to(device) for x in inputs))
            chunks.append(extractor.features(images.float(), value_range=(-1.0, 1.0)))
        generator.train(was_training)
        fake_features = np.concatenate(chunks)
        kid = kid_from_features(real_features.features, fake_features, seed=config.train.seed)
        fid = fid_from_features(real_features.features, fake_features)
        return {"kid": kid["mean"], "kid_std": kid["std"], "fid": fid, "fid_n": float(n)}

    return hook


def video_halves(items: list, seed: int) -> tuple[list, list]:
    """Two parts of ``items`` with no video in both (videos shuffled by ``seed``, the first ones filling
    about half the frames): an edit's source and the frames it is compared with never share a person."""
    videos = sorted({item.video for item in items})
    order = [videos[i] for i in np.random.default_rng(seed).permutation(len(videos))]
    first, count = set(), 0
    for video in order[:-1]:  # the last video always goes to the second part
        if count >= len(items) / 2:
            break
        first.add(video)
        count += sum(item.video == video for item in items)
    return [i for i in items if i.video in first], [i for i in items if i.video not in first]


def source_faces(items, resolution: int) -> torch.Tensor:
    """Real frames as the GAN's inputs: float ``[N, 3, R, R]`` in [-1, 1], resized as in training."""
    images = torch.from_numpy(np.stack(ImageReader().load(items))).permute(0, 3, 1, 2)
    return resize_faces(normalize_video(images), resolution)
