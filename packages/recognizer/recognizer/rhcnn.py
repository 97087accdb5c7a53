"""RHCNN, the visual branch (paper section 3.2; docs/method.md, "Visual branch").

Per frame: two NxN conv blocks, residual stages of (1x1 conv -> NxN depthwise conv -> 1x1 conv) + skip,
each block followed by a channel shuffle, then GCSA and global average pooling. The K frame vectors are
aggregated over time (mean, or a small temporal conv before the mean) into F_v [B, D].
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from recognizer.config import VisualConfig
from recognizer.gcsa import channel_shuffle, make_attention

LUMA = (0.299, 0.587, 0.114)  # RGB -> Y weights of ITU-R BT.601


def conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """1x1 conv -> NxN depthwise conv (carries the stride) -> 1x1 conv, plus skip, then channel shuffle."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        expansion: int,
        pw_groups: int,
        shuffle_groups: int,
    ) -> None:
        super().__init__()
        mid = c_out * expansion
        # The first 1x1 sees the block input, whose width need not divide by pw_groups (stem output).
        first_groups = pw_groups if c_in % pw_groups == 0 else 1
        self.body = nn.Sequential(
            nn.Conv2d(c_in, mid, 1, groups=first_groups, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, kernel, stride=stride, padding=kernel // 2, groups=mid, bias=False),
            nn.BatchNorm2d(mid),
            nn.Conv2d(mid, c_out, 1, groups=pw_groups, bias=False),
            nn.BatchNorm2d(c_out),
        )
        # A projection only where the shape changes; elsewhere the identity keeps the gradient path clean.
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                nn.BatchNorm2d(c_out),
            )
        self.shuffle_groups = shuffle_groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.body(x) + self.skip(x))
        return channel_shuffle(out, self.shuffle_groups)


class TemporalMean(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)  # B, K, D -> B, D


class TemporalConv(nn.Module):
    """A residual 1-D conv over the K frame vectors before the mean: starts close to the plain mean."""

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = rearrange(x, "b k d -> b d k")
        h = h + torch.relu(self.conv(h))  # "same" padding: K=1 works and K is free to change at test time
        return h.mean(dim=2)


class RHCNN(nn.Module):
    """Video [B, K, C, H, W] (float, normalised by the caller) -> F_v [B, cfg.out_dim]; H, W >= 32."""

    def __init__(self, cfg: VisualConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.out_dim = cfg.out_dim
        w0, w1 = cfg.stem_widths
        s0, s1 = cfg.stem_strides
        self.stem = nn.Sequential(
            conv_bn_relu(cfg.in_channels, w0, cfg.kernel_size, s0),
            conv_bn_relu(w0, w1, cfg.kernel_size, s1),
        )
        blocks: list[nn.Module] = []
        c_in = w1
        for s, width in enumerate(cfg.stage_widths):
            for b in range(cfg.blocks_per_stage):
                stride = 2 if (s > 0 and b == 0) else 1
                blocks.append(
                    ResidualBlock(
                        c_in,
                        width,
                        cfg.kernel_size,
                        stride,
                        cfg.expansion,
                        cfg.pointwise_groups,
                        cfg.shuffle_groups,
                    )
                )
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        if cfg.zero_init_residual:
            for block in blocks:
                nn.init.zeros_(block.body[-1].weight)  # its last BatchNorm: the block starts as its skip
        self.attention = make_attention(cfg.out_dim, cfg.gcsa, cfg.gcsa_start, kernel=cfg.gcsa_kernel)
        self.temporal: nn.Module = (
            TemporalConv(cfg.out_dim, cfg.temporal_kernel) if cfg.temporal == "tconv" else TemporalMean()
        )

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        B, K, C, H, W = video.shape
        # Frames are independent images until the temporal step: fold K into the batch.
        x = rearrange(video, "b k c h w -> (b k) c h w")
        flip = self.cfg.test_flip and not self.training
        if flip:  # each frame and its mirror image in one batch; their features are averaged below
            x = torch.cat([x, x.flip(-1)])
        x = self.stem(self._channels(x))  # (B*K), w1, H/4, W/4 with strides (2, 2)
        x = self.blocks(x)  # (B*K), D, H/16, W/16 with three stages
        x = self.attention(x)
        x = x.mean(dim=(2, 3))  # (B*K), D
        if flip:
            x = rearrange(x, "(two n) d -> two n d", two=2).mean(dim=0)
        x = rearrange(x, "(b k) d -> b k d", b=B, k=K)
        return self.temporal(x)  # B, D

    def _channels(self, x: torch.Tensor) -> torch.Tensor:
        """Grayscale frames [N, 1, H, W] are replicated for an RGB stem; RGB frames are reduced to luma
        (ITU-R BT.601 weights) for a grayscale stem."""
        c, want = x.shape[1], self.cfg.in_channels
        if c == want:
            return x
        if c == 1:
            return x.expand(-1, want, -1, -1)
        if c == 3 and want == 1:
            return torch.einsum("nchw,c->nhw", x, x.new_tensor(LUMA))[:, None]
        raise ValueError(f"RHCNN takes 1- or 3-channel frames, got {c} channels")
