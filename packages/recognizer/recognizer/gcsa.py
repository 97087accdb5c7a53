"""Global channel-spatial attention (paper section 3.3; docs/method.md, "GCSA").

F1 = sigmoid(MLP(permute(F))) * F          channel attention, an MLP over channels at every position
F2 = shuffle(F1, 4 groups)                  channel shuffle
F3 = sigmoid(BN(conv7(ReLU(BN(conv7(F2)))))) * F2   spatial attention

Both attention maps are full [B, C, H, W] tensors (no pooling), which is what "global" buys over SE/CBAM:
the channel weights may differ per position and the spatial weights per channel.

With ``uniform_start`` (``VisualConfig.gcsa_start`` "uniform" or "identity", the visual default) both
gates start uniform: the channel MLP's last layer and the spatial branch's last BN scale are zero at
initialisation, so GCSA begins as a constant 0.25 * F and learns where to attend from there (the
zero-gamma start of residual branches). ``gain`` 2 (``gcsa_start: identity``) doubles both gates
(2 * sigmoid, in (0, 2)): from the same zero start GCSA then begins as its input, channel-shuffled, not a
quarter of it. From random 7x7 convs the gates begin as noise over the few positions of the last map. What
each start measured: docs/usage.md ("Small faces and grayscale") and docs/results.md ("Demo results",
"Real data").
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from recognizer.config import GCSA_GAINS, check_gcsa_start


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` channel groups: for C=8, groups=4 the new order is [0, 2, 4, 6, 1, 3, 5, 7]."""
    C = x.shape[1]
    if C % groups:
        raise ValueError(f"channel shuffle needs channels ({C}) divisible by groups ({groups})")
    return rearrange(x, "b (g c) h w -> b (c g) h w", g=groups)


class GCSA(nn.Module):
    """Channel attention -> channel shuffle -> spatial attention; output has the input's shape."""

    def __init__(
        self,
        channels: int,
        reduction: int = 4,
        groups: int = 4,
        kernel: int = 7,
        uniform_start: bool = True,
        gain: float = 1.0,
    ) -> None:
        super().__init__()
        self.gain = gain
        if channels % groups or channels < reduction:
            raise ValueError(f"GCSA needs channels ({channels}) divisible by {groups} and >= {reduction}")
        hidden = channels // reduction
        self.groups = groups
        # nn.Linear on channels-last is the paper's "permute, MLP": a per-position 1x1 bottleneck.
        self.channel_mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )
        # Convs before BN carry no bias: BN's shift would cancel it.
        self.spatial = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(channels),
        )
        if uniform_start:  # sigmoid(0) = 0.5 everywhere: uniform gates at the start
            nn.init.zeros_(self.channel_mlp[-1].weight)
            nn.init.zeros_(self.channel_mlp[-1].bias)
            nn.init.zeros_(self.spatial[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: B, C, H, W
        channel_logits = self.channel_mlp(rearrange(x, "b c h w -> b h w c"))
        f1 = self.gain * torch.sigmoid(rearrange(channel_logits, "b h w c -> b c h w")) * x
        f2 = channel_shuffle(f1, self.groups)
        return self.gain * torch.sigmoid(self.spatial(f2)) * f2


def make_attention(channels: int, enabled: bool, start: str = "uniform", **kwargs: int) -> nn.Module:
    """GCSA when ``enabled``, else ``nn.Identity`` (the "Base" ablation): same call site, same shapes.
    ``start``: a branch config's ``gcsa_start``, "uniform" (both gates start at 0.5), "random", or
    "identity" (uniform gates of gain 2: GCSA starts as its input)."""
    check_gcsa_start(start)
    if not enabled:
        return nn.Identity()
    return GCSA(channels, uniform_start=start != "random", gain=GCSA_GAINS[start], **kwargs)
