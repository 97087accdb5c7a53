"""Modality dropout: during training, hide one modality of some audio-visual samples.

Trained jointly on the fused probabilities, the branch that fits the training set first (here the visual
one, which can memorise faces) takes over the fused loss, and the other branch stops learning from it: the
audio branch inside a V+A model ends weaker than an audio-only model. Hiding a modality from a sample
turns the fused prediction into the other branch's own (the fusion's missing-modality rule), so that
branch learns from that sample in full. Evaluation never drops anything.
"""

from __future__ import annotations

import torch


def drop_modalities(
    has_audio: torch.Tensor, has_video: torch.Tensor, p: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """New ``(has_audio, has_video)`` masks [B] (bool): each sample that has both modalities loses one of
    them with probability ``p``, audio or video with equal chance. Samples with one modality keep it."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"modality dropout must be in [0, 1], got {p}")
    has_audio, has_video = has_audio.bool(), has_video.bool()
    if p == 0.0:
        return has_audio, has_video
    # drawn on the CPU (the checkpointed RNG, so a resumed run draws the same), then moved to the masks
    draw = torch.rand(has_audio.shape[0], 2, generator=generator).to(has_audio.device)
    drop = (draw[:, 0] < p) & has_audio & has_video
    drop_video = drop & (draw[:, 1] < 0.5)
    return has_audio & ~(drop & ~drop_video), has_video & ~drop_video
