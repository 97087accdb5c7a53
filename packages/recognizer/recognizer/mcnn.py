"""MCNN, the audio branch (paper section 3.2; docs/method.md, "Audio branch").

Three branches read the log-mel [B, 1, F, T]: local (square kernels), temporal (long in time) and spectral
(long in frequency; the paper's "spatial"). Each branch is a stack of conv blocks whose receptive fields
differ (block i is dilated growth**i). The branch outputs are concatenated on channels, go through GCSA and
are average-pooled into F_a [B, 3 * branch_widths[-1]].
"""

from __future__ import annotations

import torch
from torch import nn

from recognizer.config import AudioConfig
from recognizer.gcsa import make_attention


def conv_block(c_in: int, c_out: int, kernel: tuple[int, ...], dilation: int, pool: int) -> nn.Sequential:
    kf, kt = kernel
    # "Same" padding for odd, possibly dilated, rectangular kernels keeps the three branches the same size.
    padding = (dilation * (kf - 1) // 2, dilation * (kt - 1) // 2)
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, (kf, kt), padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(pool) if pool > 1 else nn.Identity(),
    )


def branch(cfg: AudioConfig, kernel: tuple[int, ...]) -> nn.Sequential:
    blocks: list[nn.Module] = []
    c_in = cfg.in_channels
    for i, width in enumerate(cfg.branch_widths):
        blocks.append(conv_block(c_in, width, kernel, cfg.dilation_growth**i, cfg.pool))
        c_in = width
    return nn.Sequential(*blocks)


class MCNN(nn.Module):
    """Log-mel [B, C, F, T] -> F_a [B, cfg.out_dim]; F >= 32 and T >= 16 with the default two pools."""

    def __init__(self, cfg: AudioConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.out_dim = cfg.out_dim
        self.input_norm: nn.Module = nn.BatchNorm2d(cfg.in_channels) if cfg.input_norm else nn.Identity()
        pooled = cfg.stem_pools != (1, 1)
        self.stem: nn.Module = nn.AvgPool2d(cfg.stem_pools, ceil_mode=True) if pooled else nn.Identity()
        self.local = branch(cfg, cfg.local_kernel)
        self.temporal = branch(cfg, cfg.temporal_kernel)
        self.spectral = branch(cfg, cfg.spectral_kernel)
        self.attention = make_attention(cfg.out_dim, cfg.gcsa, cfg.gcsa_start)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        B, C, F, T = audio.shape
        x = self.stem(self.input_norm(audio))  # B, C, F / sf, T / st
        x = torch.cat([self.local(x), self.temporal(x), self.spectral(x)], dim=1)  # B, 3*w, F', T'
        x = self.attention(x)
        return x.mean(dim=(2, 3))  # B, D
