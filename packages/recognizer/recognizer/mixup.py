"""Mixup for the recognizer (Zhang et al. 2018): a training batch blended with a shuffled copy of itself,
one ``lam ~ Beta(alpha, alpha)`` per batch, and the loss blended the same way between the two labels.

A sample is blended only with a partner that has the same modalities (a V+A clip with a V+A clip, a face
with a face): blending a clip's sound with a partner's silent placeholder would teach nothing true. Samples
without such a partner keep ``lam = 1`` (themselves, their own label). Training only.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from recognizer.losses import recognizer_loss


def mix_batch(
    video: torch.Tensor,
    audio: torch.Tensor,
    has_video: torch.Tensor,
    has_audio: torch.Tensor,
    alpha: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(video, audio, partner index [B], per-sample lam [B]); ``video`` is the normalised float clip."""
    B = video.shape[0]
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    partner = torch.randperm(B, device=video.device)
    same = (has_video == has_video[partner]) & (has_audio == has_audio[partner])
    lam_i = torch.where(same, torch.full((B,), lam, device=video.device), torch.ones(B, device=video.device))
    v = lam_i.view(B, *([1] * (video.ndim - 1))).to(video.dtype)
    a = lam_i.view(B, *([1] * (audio.ndim - 1))).to(audio.dtype)
    return v * video + (1 - v) * video[partner], a * audio + (1 - a) * audio[partner], partner, lam_i


def mixup_loss(
    loss_fn: nn.Module,
    outputs: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    partner: torch.Tensor,
    lam: torch.Tensor,
    has_audio: torch.Tensor,
    has_video: torch.Tensor,
    aux_weight: float,
    weight: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """:func:`~recognizer.losses.recognizer_loss` against each sample's own label at weight ``lam`` plus its
    partner's label at ``1 - lam`` (times the sample's own weight)."""
    base = torch.ones_like(lam) if weight is None else weight.to(lam.dtype)
    own = recognizer_loss(loss_fn, outputs, labels, has_audio, has_video, aux_weight, base * lam)
    other = recognizer_loss(
        loss_fn, outputs, labels[partner], has_audio, has_video, aux_weight, base * (1 - lam)
    )
    return {key: own[key] + other[key] for key in own}
