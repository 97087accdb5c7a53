"""Exponential moving average of the generator, parametrised by a half-life in images (StyleGAN2-ADA).

A half-life in images, unlike a per-step decay, means the same thing at any batch size: after half_life images
the old weights count for half. The EMA generator is what `generate` and FID use; it is never trained.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from gan_aug.config import EmaConfig


def ema_beta(
    batch_size: int, half_life_images: float, cur_images: float | None = None, rampup: float | None = None
) -> float:
    """Weight of the old EMA for one step of ``batch_size`` images: 0.5 ** (batch / half_life).

    With ``rampup``, the half-life is capped at ``cur_images * rampup`` so that early in training, when G
    changes fast, the average does not drag along weights from its random start.
    """
    half_life = float(half_life_images)
    if rampup is not None:
        if cur_images is None:
            raise ValueError("ema_beta with rampup needs cur_images (images seen so far)")
        half_life = min(half_life, cur_images * rampup)
    return 0.5 ** (batch_size / max(half_life, 1e-8))


class GeneratorEma:
    """A frozen copy of G whose parameters follow G's by lerp and whose buffers (BN running stats, spectral
    norm's power-iteration vectors) are copied, since averaging those has no meaning."""

    def __init__(self, generator: nn.Module, cfg: EmaConfig) -> None:
        self.cfg = cfg
        self.module = copy.deepcopy(generator).eval().requires_grad_(False)

    @property
    def half_life_images(self) -> float:
        return self.cfg.half_life_kimg * 1000.0

    @torch.no_grad()
    def update(self, generator: nn.Module, batch_size: int, cur_images: float) -> float:
        """One EMA step after G's step on ``batch_size`` images (``cur_images`` seen so far); returns beta.

        Pass the unwrapped G (``accelerator.unwrap_model``): parameter names must match the copy's.
        """
        beta = ema_beta(batch_size, self.half_life_images, cur_images, self.cfg.rampup)
        params = dict(generator.named_parameters())
        for name, p_ema in self.module.named_parameters():
            # p_ema + (1 - beta) * (p - p_ema) = beta * p_ema + (1 - beta) * p
            p_ema.lerp_(params[name].detach().to(p_ema.dtype), 1.0 - beta)
        buffers = dict(generator.named_buffers())
        for name, b_ema in self.module.named_buffers():
            b_ema.copy_(buffers[name])
        return beta

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.module(*args, **kwargs)

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state)
