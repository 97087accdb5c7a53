"""BigGAN-style conditional generator and projection discriminator, conditioned on (class, domain).

The class says which expression to draw, the domain which dataset's look (CK+ lab light, AFEW film, Aff-Wild2
webcam); the two are embedded separately so that a combination rare in the data (Fear in Aff-Wild2 style) is
still a point the networks have seen both halves of. No I/O here: the trainer owns data, devices and steps.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gan_aug.config import (
    DiscriminatorConfig,
    GanModelConfig,
    GeneratorConfig,
    base_size,
    check_labels,
    num_up_blocks,
)


def _sn_conv(c_in: int, c_out: int, kernel: int) -> nn.Module:
    conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)
    nn.init.orthogonal_(conv.weight)  # BigGAN's init; done before SN, which normalises the original weight
    nn.init.zeros_(conv.bias)
    return spectral_norm(conv)


def _sn_linear(c_in: int, c_out: int, bias: bool = True) -> nn.Module:
    linear = nn.Linear(c_in, c_out, bias=bias)
    nn.init.orthogonal_(linear.weight)
    if bias:
        nn.init.zeros_(linear.bias)
    return spectral_norm(linear)


def _embedding(num: int, dim: int, sn: bool) -> nn.Module:
    embed = nn.Embedding(num, dim)
    nn.init.orthogonal_(embed.weight)
    return spectral_norm(embed) if sn else embed


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose per-channel gain and bias are linear in a conditioning vector (BigGAN's ccbn)."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        # Gain is 1 + f(cond): at f = 0 the layer is a plain BN, so conditioning starts as a perturbation.
        self.gain = _sn_linear(cond_dim, channels, bias=False)
        self.bias = _sn_linear(cond_dim, channels, bias=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gain = rearrange(1.0 + self.gain(cond), "b c -> b c 1 1")
        bias = rearrange(self.bias(cond), "b c -> b c 1 1")
        return self.bn(x) * gain + bias


class GBlock(nn.Module):
    """Up-residual block: CBN-ReLU-up-conv-CBN-ReLU-conv, plus an upsampled 1x1-conv shortcut."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(c_in, cond_dim)
        self.conv1 = _sn_conv(c_in, c_out, 3)
        self.bn2 = ConditionalBatchNorm2d(c_out, cond_dim)
        self.conv2 = _sn_conv(c_out, c_out, 3)
        self.shortcut = _sn_conv(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(x, cond))
        h = self.conv1(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.conv2(F.relu(self.bn2(h, cond)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class Generator(nn.Module):
    """z [B, z_dim], class y [B], domain d [B] -> images [B, 3, R, R] in [-1, 1]."""

    def __init__(self, cfg: GeneratorConfig, num_classes: int, num_domains: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes, self.num_domains = num_classes, num_domains
        self.base = base_size(cfg.resolution)
        channels = [cfg.width * m for m in cfg.multipliers]
        n_blocks = num_up_blocks(cfg.resolution)

        # Hierarchical z: one chunk for the first linear layer and one per block. The blocks' chunks are
        # equal (one conditioning size for all); the first takes the remainder, so no dimension is dropped.
        block_z = cfg.z_dim // (n_blocks + 1) if cfg.hierarchical_z else 0
        self.z_chunks = [cfg.z_dim - block_z * n_blocks] + [block_z] * n_blocks if block_z else [cfg.z_dim]

        # The shared embedding: one table per factor, shared by every block (BigGAN's `shared`), not SN'd.
        self.class_embed = _embedding(num_classes, cfg.embed_dim, sn=False)
        self.domain_embed = _embedding(num_domains, cfg.embed_dim, sn=False)
        cond_dim = 2 * cfg.embed_dim + block_z

        self.linear = _sn_linear(self.z_chunks[0], channels[0] * self.base * self.base)
        pairs = zip(channels[:-1], channels[1:], strict=True)
        self.blocks = nn.ModuleList(GBlock(c_in, c_out, cond_dim) for c_in, c_out in pairs)
        self.out_bn = nn.BatchNorm2d(channels[-1])
        self.out_conv = _sn_conv(channels[-1], 3, 3)

    def forward(self, z: torch.Tensor, y: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        B = z.shape[0]
        if z.shape != (B, self.cfg.z_dim):
            raise ValueError(f"expected z of shape [B, {self.cfg.z_dim}], got {tuple(z.shape)}")
        check_labels(y, d, B, self.num_classes, self.num_domains)
        shared = torch.cat([self.class_embed(y), self.domain_embed(d)], dim=1)  # [B, 2E]
        z_first, *z_blocks = torch.split(z, self.z_chunks, dim=1)
        if not z_blocks:  # flat z: every block sees the embedding alone
            z_blocks = [z.new_zeros(B, 0)] * len(self.blocks)

        h = rearrange(self.linear(z_first), "b (c h w) -> b c h w", h=self.base, w=self.base)
        for block, z_chunk in zip(self.blocks, z_blocks, strict=True):
            h = block(h, torch.cat([shared, z_chunk], dim=1))
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))  # [B, 3, R, R]


class DBlock(nn.Module):
    """Down-residual block with spectral norm; the first block skips the pre-activation so that a ReLU does
    not zero the negative half of the image."""

    def __init__(self, c_in: int, c_out: int, downsample: bool, preactivation: bool) -> None:
        super().__init__()
        self.downsample, self.preactivation = downsample, preactivation
        self.conv1 = _sn_conv(c_in, c_out, 3)
        self.conv2 = _sn_conv(c_out, c_out, 3)
        self.shortcut = _sn_conv(c_in, c_out, 1) if (c_in != c_out or downsample) else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self._pool(self.conv2(F.relu(self.conv1(h))))
        if self.shortcut is None:
            skip = x
        elif self.preactivation:  # BigGAN's order: later blocks convolve then pool, the first pools the image
            skip = self._pool(self.shortcut(x))
        else:
            skip = self.shortcut(self._pool(x))
        return h + skip


class DiscriminatorParts(NamedTuple):
    """D's logit and its three additive terms, for tests and for logging what D relies on."""

    logits: torch.Tensor  # [B] = unconditional + class_term + domain_term
    unconditional: torch.Tensor  # [B] linear(h)
    class_term: torch.Tensor  # [B] <embed_class(y), h>
    domain_term: torch.Tensor  # [B] <embed_domain(d), h>
    features: torch.Tensor  # [B, C] h, the sum-pooled features


class Discriminator(nn.Module):
    """Projection discriminator (Miyato & Koyama 2018): images [B, 3, R, R], y [B], d [B] -> logits [B]."""

    def __init__(self, cfg: DiscriminatorConfig, num_classes: int, num_domains: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes, self.num_domains = num_classes, num_domains
        channels = [3] + [cfg.width * m for m in cfg.multipliers]
        n_down = num_up_blocks(cfg.resolution)
        # n_down blocks halve the map down to G's base size; the last block works at that size (BigGAN).
        self.blocks = nn.Sequential(
            *(
                DBlock(c_in, c_out, downsample=i < n_down, preactivation=i > 0)
                for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:], strict=True))
            )
        )
        self.linear = _sn_linear(channels[-1], 1)
        self.class_embed = _embedding(num_classes, channels[-1], sn=True)
        self.domain_embed = _embedding(num_domains, channels[-1], sn=True)

    def forward_parts(self, x: torch.Tensor, y: torch.Tensor, d: torch.Tensor) -> DiscriminatorParts:
        B, C, H, W = x.shape
        if (C, H, W) != (3, self.cfg.resolution, self.cfg.resolution):
            r = self.cfg.resolution
            raise ValueError(f"expected images [B, 3, {r}, {r}], got {tuple(x.shape)}")
        check_labels(y, d, B, self.num_classes, self.num_domains)
        # Sum (not mean) pooling as in BigGAN/SNGAN: the projection's scale then grows with the map size.
        h = reduce(F.relu(self.blocks(x)), "b c h w -> b c", "sum")
        unconditional = rearrange(self.linear(h), "b 1 -> b")
        class_term = (self.class_embed(y) * h).sum(dim=1)
        domain_term = (self.domain_embed(d) * h).sum(dim=1)
        logits = unconditional + class_term + domain_term
        return DiscriminatorParts(logits, unconditional, class_term, domain_term, h)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, d: torch.Tensor, class_logits: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits [B]; with ``class_logits`` also [B, num_classes] = h @ E_class^T, the projection's own
        class embedding read as a classifier (the auxiliary class loss; via ``forward`` so DDP sees it)."""
        parts = self.forward_parts(x, y, d)
        if not class_logits:
            return parts.logits
        # The spectral-normed embedding's weight was just refreshed by the class_term lookup above.
        return parts.logits, parts.features @ self.class_embed.weight.t()


def build_networks(cfg: GanModelConfig) -> tuple[nn.Module, Discriminator]:
    """G and D of a model config (the checkpoint's config rebuilds the same pair): the sampling generator,
    or with ``kind: edit`` the editing one (gan_aug/edit_networks.py)."""
    if cfg.kind == "edit":
        from gan_aug.edit_networks import EditGenerator

        G: nn.Module = EditGenerator(cfg.edit, cfg.generator.resolution, cfg.num_classes, cfg.num_domains)
    else:
        G = Generator(cfg.generator, cfg.num_classes, cfg.num_domains)
    return G, Discriminator(cfg.discriminator, cfg.num_classes, cfg.num_domains)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
