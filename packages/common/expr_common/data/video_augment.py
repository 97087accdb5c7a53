"""Training-time augmentation of face clips with torchvision transforms v2.

One draw of the parameters per clip: every frame of a clip gets the same flip, crop and colour change, so
the motion between frames stays the expression's own. Without it a small CNN memorises each person's face,
background and colour cast (the windows of one video share all three) instead of the expression.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from expr_common.data.config import AugmentConfig


class ClipAugment(torch.nn.Module):
    """``uint8 [K, C, H, W]`` (one clip) or ``[B, K, C, H, W]`` (each clip drawn independently) -> same."""

    def __init__(self, cfg: AugmentConfig):
        super().__init__()
        self.cfg = cfg
        self._by_size: dict[tuple[int, int], v2.Compose] = {}

    @property
    def active(self) -> bool:
        cfg = self.cfg
        return cfg.hflip or cfg.crop_scale < 1.0 or cfg.color_jitter > 0

    def _transform(self, size: tuple[int, int]) -> v2.Compose:
        if size not in self._by_size:  # the crop goes back to the clip's own size (caches differ)
            cfg, steps = self.cfg, []
            if cfg.hflip:
                steps.append(v2.RandomHorizontalFlip())  # faces and expressions are near-symmetric
            if cfg.crop_scale < 1.0:
                steps.append(v2.RandomResizedCrop(size, scale=(cfg.crop_scale, 1.0), ratio=(0.9, 1.1)))
            if cfg.color_jitter > 0:
                j = cfg.color_jitter
                steps.append(v2.ColorJitter(brightness=j, contrast=j, saturation=j, hue=min(0.5, j / 4)))
            self._by_size[size] = v2.Compose(steps)
        return self._by_size[size]

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return video
        transform = self._transform(tuple(video.shape[-2:]))
        # A plain [K, C, H, W] tensor is one image batch to v2: one parameter draw for all K frames.
        if video.ndim == 5:
            return torch.stack([transform(clip) for clip in video])
        return transform(video)
