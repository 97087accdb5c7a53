"""The audio-visual recognizer: RHCNN and/or MCNN, one classifier head each, proportional decision fusion.

A branch runs only on the samples that have its modality. Placeholder inputs (a CK+ or GAN clip's empty
audio) would otherwise reach BatchNorm's batch statistics and running averages and skew them towards
whatever the placeholder holds. Rows of ``logits_*`` / ``prob_*`` for samples without the modality are
placeholders (logits 0, uniform probabilities); the masks keep them out of the fusion and the losses.
"""

from __future__ import annotations

import torch
from torch import nn

from recognizer.config import ModelConfig
from recognizer.fusion import proportional_fusion
from recognizer.mcnn import MCNN
from recognizer.rhcnn import RHCNN


def classifier_head(dim: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_classes))  # softmax happens in forward


class AudioVisualRecognizer(nn.Module):
    """``forward(video, audio, has_video, has_audio) -> {logits_v, logits_a, prob_v, prob_a, prob}``.

    video [B, K, C, H, W] float, audio [B, 1, F, T] float, masks [B] bool (None = all present). A "v" model
    has no audio branch (and returns no ``*_a`` keys), an "a" model no visual branch; ``prob`` is then the
    one branch's probabilities.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.visual: RHCNN | None = None
        self.audio: MCNN | None = None
        self.head_v: nn.Module | None = None
        self.head_a: nn.Module | None = None
        if cfg.use_video:
            self.visual = RHCNN(cfg.visual)
            self.head_v = classifier_head(self.visual.out_dim, cfg.num_classes, cfg.visual.dropout)
        if cfg.use_audio:
            self.audio = MCNN(cfg.audio)
            self.head_a = classifier_head(self.audio.out_dim, cfg.num_classes, cfg.audio.dropout)

    def forward(
        self,
        video: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        has_video: torch.Tensor | None = None,
        has_audio: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        B = _batch_size(video, audio, has_video, has_audio)
        device = next(self.parameters()).device
        out: dict[str, torch.Tensor] = {}
        if self.visual is not None:
            has_video = _mask(has_video, video, B, device)
            out["logits_v"] = self._branch(self.visual, self.head_v, video, has_video, B)
            out["prob_v"] = out["logits_v"].softmax(dim=1)
        if self.audio is not None:
            has_audio = _mask(has_audio, audio, B, device)
            out["logits_a"] = self._branch(self.audio, self.head_a, audio, has_audio, B)
            out["prob_a"] = out["logits_a"].softmax(dim=1)
        if self.visual is not None and self.audio is not None:
            fusion = self.cfg.fusion
            out["prob"] = proportional_fusion(
                out["prob_a"], out["prob_v"], fusion.m, fusion.n, has_audio, has_video
            )
        else:
            key = "v" if self.visual is not None else "a"
            # Same rule as the fusion: a sample lacking the only modality gets the uniform distribution.
            out["prob"] = out[f"prob_{key}"]
        return out

    def _branch(
        self, net: nn.Module, head: nn.Module | None, x: torch.Tensor | None, present: torch.Tensor, B: int
    ) -> torch.Tensor:
        assert head is not None
        C = self.cfg.num_classes
        if x is None or not bool(present.any()):
            # No sample has this modality: nothing runs, so these parameters get no gradient this step.
            ref = next(net.parameters())
            return torch.zeros(B, C, dtype=ref.dtype, device=ref.device)
        if bool(present.all()):
            return head(net(x))  # the common case: no gather/scatter
        logits = head(net(x[present]))  # n_present, C
        return logits.new_zeros(B, C).index_put((present.nonzero(as_tuple=True)[0],), logits)


def _batch_size(*tensors: torch.Tensor | None) -> int:
    for t in tensors:
        if t is not None:
            return t.shape[0]
    raise ValueError("forward needs at least one of video, audio, has_video, has_audio")


def _mask(mask: torch.Tensor | None, x: torch.Tensor | None, B: int, device: torch.device) -> torch.Tensor:
    # An absent tensor means no sample has the modality; an absent mask means every sample does.
    if x is None:
        return torch.zeros(B, dtype=torch.bool, device=device)
    if mask is None:
        return torch.ones(B, dtype=torch.bool, device=device)
    if mask.shape != (B,):
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match batch size {B}")
    return mask.to(device=device, dtype=torch.bool)
