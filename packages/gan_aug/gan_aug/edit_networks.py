"""The editing generator (``model.kind: edit``): StarGAN's encoder-decoder (Choi et al., CVPR 2018) with
GANimation's attention output (Pumarola et al., ECCV 2018).

``G(x, c, d)`` takes a real face ``x`` [B, 3, R, R] in [-1, 1], a target class ``c`` and the face's domain
``d`` (both given to every pixel as one-hot planes, as StarGAN does with its label vector), and predicts a
colour map ``C`` (tanh) and an attention mask ``A`` (sigmoid); the edit is ``A * C + (1 - A) * x``, so
where ``A`` is 0 the face's own pixels pass through untouched: its identity, background, camera noise and
motion stay, and only what the expression moves changes. The mask head starts biased towards 0
(``EditConfig.mask_bias``), so an untrained G returns nearly its input. :func:`edit_frames` edits frames
larger than G's resolution: G sees them downscaled, its mask and colour map are upscaled and composed with
the full-size frames, so the editor's size bounds only the edit's detail, never the rest of the frame. The
colour map follows the input's channels: a grayscale face (stored as RGB) gets a grey colour map, so its
edit stays grayscale. With ``edit.output: warp`` what the mask lets through is the face's own pixels moved
by a smooth flow field (at most ``edit.max_shift``) instead of a colour map: the edit can move features but
paint none. No I/O here.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from gan_aug.config import check_labels
from gan_aug.sampling import resize_faces

GREY_TOLERANCE = 4 / 255  # in [-1, 1] units: two 8-bit levels between a pixel's channels still count as grey


def greyscale(x: torch.Tensor) -> torch.Tensor:
    """[B] True for each face of ``x`` [B, 3, H, W] whose every pixel has (nearly) equal channels."""
    return (x.amax(dim=1) - x.amin(dim=1)).flatten(1).amax(dim=1) <= GREY_TOLERANCE


def follow_channels(colour: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``colour`` [B, 3, H, W] as it is for colour faces of ``x``, its channels' mean on all three for
    grayscale ones (without a data-dependent branch: the same graph for every batch)."""
    grey = greyscale(x)[:, None, None, None]
    return torch.where(grey, colour.mean(dim=1, keepdim=True).expand_as(colour), colour)


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``x`` [B, C, H, W] sampled (bilinear, edges repeated) at each pixel's centre moved by ``flow``
    [B, 2, H, W] (x then y, in grid_sample's [-1, 1] units: 2 / W is one pixel). A zero flow returns ``x``."""
    B, _, H, W = x.shape
    identity = torch.eye(2, 3, dtype=x.dtype, device=x.device).expand(B, 2, 3)
    grid = F.affine_grid(identity, [B, 1, H, W], align_corners=False) + rearrange(flow, "b c h w -> b h w c")
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=False)


class EditParts(NamedTuple):
    image: torch.Tensor  # [B, 3, R, R] = mask * colour + (1 - mask) * x
    mask: torch.Tensor  # [B, 1, R, R] in (0, 1): where the edit writes
    colour: torch.Tensor  # [B, 3, R, R] in (-1, 1): what it writes there (the warped face, with a flow)
    flow: torch.Tensor | None = None  # [B, 2, R, R]: the warp (edit.output: warp), else None


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True)  # StarGAN's: per-image statistics, no batch coupling


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), _norm(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), _norm(channels),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class EditGenerator(nn.Module):
    """x [B, 3, R, R], target class c [B], domain d [B] -> the edited face [B, 3, R, R] in [-1, 1]."""

    def __init__(self, cfg, resolution: int, num_classes: int, num_domains: int) -> None:
        super().__init__()
        self.cfg, self.resolution = cfg, resolution
        self.num_classes, self.num_domains = num_classes, num_domains
        if resolution % (2**cfg.down_blocks):
            raise ValueError(f"edit.down_blocks={cfg.down_blocks} does not divide {resolution} px")
        width = cfg.width
        layers: list[nn.Module] = [
            nn.Conv2d(3 + num_classes + num_domains, width, 7, padding=3, bias=False),
            _norm(width),
            nn.ReLU(inplace=True),
        ]
        for _ in range(cfg.down_blocks):  # StarGAN: two stride-2 convolutions down
            layers += [nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False), _norm(2 * width)]
            layers.append(nn.ReLU(inplace=True))
            width *= 2
        layers += [ResidualBlock(width) for _ in range(cfg.res_blocks)]
        for _ in range(cfg.down_blocks):  # and two up: nearest-neighbour resize then a 3x3 convolution, not
            # StarGAN's transposed convolution, whose uneven overlap drew a checkerboard over the edited
            # pixels on the demo (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts")
            layers += [nn.Upsample(scale_factor=2, mode="nearest")]
            layers += [nn.Conv2d(width, width // 2, 3, padding=1, bias=False)]
            layers += [_norm(width // 2), nn.ReLU(inplace=True)]
            width //= 2
        self.body = nn.Sequential(*layers)
        self.warps = cfg.output == "warp"
        # Warp: a flow head starting at zero (no movement); colour: GANimation's colour map. Only the head in
        # use exists, so a DDP-wrapped G has no parameter without a gradient.
        self.colour = nn.Conv2d(width, 2 if self.warps else 3, 7, padding=3)
        if self.warps:
            nn.init.zeros_(self.colour.weight)
            nn.init.zeros_(self.colour.bias)
        self.mask = nn.Conv2d(width, 1, 7, padding=3)
        nn.init.zeros_(self.mask.weight)  # the mask starts as sigmoid(mask_bias) everywhere: a near-identity
        nn.init.constant_(self.mask.bias, cfg.mask_bias)

    def forward(
        self, x: torch.Tensor, c: torch.Tensor, d: torch.Tensor, parts: bool = False
    ) -> torch.Tensor | EditParts:
        """The edited faces; with ``parts`` also the mask and the colour map (through ``forward``, so a
        DDP-wrapped G sees the call)."""
        B, C, H, W = x.shape
        if (C, H, W) != (3, self.resolution, self.resolution):
            r = self.resolution
            raise ValueError(f"expected faces [B, 3, {r}, {r}], got {tuple(x.shape)}")
        check_labels(c, d, B, self.num_classes, self.num_domains)
        label = torch.cat([F.one_hot(c, self.num_classes), F.one_hot(d, self.num_domains)], dim=1)
        planes = repeat(label.to(x.dtype), "b k -> b k h w", h=H, w=W)
        h = self.body(torch.cat([x, planes], dim=1))
        mask, flow = torch.sigmoid(self.mask(h)), None
        if self.warps:
            shift = torch.tanh(self.colour(h)) * self.cfg.max_shift
            coarse = F.adaptive_avg_pool2d(shift, self.cfg.flow_grid)
            flow = F.interpolate(coarse, size=(H, W), mode="bilinear", align_corners=False)
            colour = warp(x, flow)
        else:
            colour = follow_channels(torch.tanh(self.colour(h)), x)
        image = mask * colour + (1 - mask) * x
        return EditParts(image, mask, colour, flow) if parts else image


def edit_frames(G: EditGenerator, x: torch.Tensor, c: torch.Tensor, d: torch.Tensor) -> EditParts:
    """``G``'s edit of faces ``x`` [B, 3, S, S] in [-1, 1] of any size S, composed at S: G runs on ``x``
    resized to its resolution (antialiased bilinear), and its mask and colour map are resized back (bilinear)
    and composed with ``x`` itself, so where the mask is 0 the full-size input passes through exactly."""
    if x.shape[-1] == G.resolution and x.shape[-2] == G.resolution:
        return G(x, c, d, parts=True)
    parts = G(resize_faces(x, G.resolution), c, d, parts=True)
    size = tuple(x.shape[-2:])
    mask = F.interpolate(parts.mask, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
    if parts.flow is not None:  # the full-size frame itself is moved: the warp keeps its detail
        flow = F.interpolate(parts.flow, size=size, mode="bilinear", align_corners=False)
        moved = warp(x, flow)
        return EditParts(mask * moved + (1 - mask) * x, mask, moved, flow)
    colour = F.interpolate(parts.colour, size=size, mode="bilinear", align_corners=False).clamp(-1, 1)
    return EditParts(mask * colour + (1 - mask) * x, mask, colour)
