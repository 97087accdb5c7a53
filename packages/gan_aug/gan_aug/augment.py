"""Differentiable augmentation for GAN training: DiffAugment's ops (Zhao et al. 2020) with ADA-style control.

D only ever sees augmented images, real and fake through the SAME function, so it cannot tell them apart by
the augmentation; G receives gradients through it because every op is built from differentiable tensor ops.
The random parameters are drawn apart from applying them (``sample_augment_params`` / ``apply_augment``), and
all draws go through one optional ``torch.Generator``, so a run is reproducible and a test can replay a draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange

from gan_aug.config import AUGMENT_POLICIES, AugmentConfig


@dataclass
class AugmentParams:
    """One draw of per-sample parameters (each [B]); an op that is gated off gets its identity value."""

    policy: tuple[str, ...]
    height: int
    width: int
    brightness: torch.Tensor | None = None  # added offset; identity 0
    saturation: torch.Tensor | None = None  # factor on the distance to the per-pixel grey; identity 1
    contrast: torch.Tensor | None = None  # factor on the distance to the image mean; identity 1
    shift_y: torch.Tensor | None = None  # integer pixels, positive = down; identity 0
    shift_x: torch.Tensor | None = None  # integer pixels, positive = right; identity 0
    cutout_top: torch.Tensor | None = None  # top-left corner of the erased square (may lie partly outside)
    cutout_left: torch.Tensor | None = None
    cutout_on: torch.Tensor | None = None  # bool: whether this sample is cut at all
    max_shift: tuple[int, int] = (0, 0)  # (rows, cols): the zero padding translation needs
    cutout_size: tuple[int, int] = (0, 0)  # (rows, cols)


def _uniform(batch: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(batch, generator=generator, device=device)


def sample_augment_params(
    batch_size: int,
    height: int,
    width: int,
    policy: tuple[str, ...] | list[str] = AUGMENT_POLICIES,
    p: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    translation_ratio: float = 0.125,
    cutout_ratio: float = 0.5,
) -> AugmentParams:
    """Draw the parameters of every op in ``policy`` for a batch; each op is applied to each sample with
    probability ``p`` (independently per op and per sample, as in ADA; ``p = 1`` is plain DiffAugment).

    Draws happen on the generator's device (a CPU generator cannot draw CUDA tensors) and are then moved to
    ``device``, so the same seeded CPU generator gives the same augmentation on any device.
    """
    policy = tuple(policy)
    unknown = [name for name in policy if name not in AUGMENT_POLICIES]
    if unknown:
        raise ValueError(f"unknown augment policy {unknown[0]!r}: expected names from {AUGMENT_POLICIES}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"augment probability must be in [0, 1], got {p}")
    target = torch.device(device) if device is not None else torch.device("cpu")
    draw = generator.device if generator is not None else target
    B = batch_size
    params = AugmentParams(policy=policy, height=height, width=width)
    for name in policy:
        # Draws happen in policy order, whatever p is, so the stream does not depend on which ops fired.
        gate = (_uniform(B, generator, draw) < p).float()
        if name == "color":
            params.brightness = (_uniform(B, generator, draw) - 0.5) * gate  # U(-0.5, 0.5) on [-1, 1] pixels
            params.saturation = 1.0 + (_uniform(B, generator, draw) * 2.0 - 1.0) * gate  # U(0, 2)
            params.contrast = 1.0 + (_uniform(B, generator, draw) - 0.5) * gate  # U(0.5, 1.5)
        elif name == "translation":
            sy, sx = int(height * translation_ratio + 0.5), int(width * translation_ratio + 0.5)
            params.max_shift = (sy, sx)
            params.shift_y = torch.randint(-sy, sy + 1, (B,), generator=generator, device=draw) * gate.long()
            params.shift_x = torch.randint(-sx, sx + 1, (B,), generator=generator, device=draw) * gate.long()
        elif name == "cutout":
            ch, cw = int(height * cutout_ratio + 0.5), int(width * cutout_ratio + 0.5)
            params.cutout_size = (ch, cw)
            # Centres anywhere in the image (DiffAugment): near a border only part of the square is erased.
            cy = torch.randint(0, height + (1 - ch % 2), (B,), generator=generator, device=draw)
            cx = torch.randint(0, width + (1 - cw % 2), (B,), generator=generator, device=draw)
            params.cutout_top, params.cutout_left = cy - ch // 2, cx - cw // 2
            params.cutout_on = gate.bool()
    for key, value in vars(params).items():
        if isinstance(value, torch.Tensor):
            setattr(params, key, value.to(target))
    return params


def _per_sample(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return rearrange(v.to(x.dtype), "b -> b 1 1 1")


def _color(x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    assert params.brightness is not None and params.saturation is not None and params.contrast is not None
    x = x + _per_sample(params.brightness, x)
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * _per_sample(params.saturation, x) + grey
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _per_sample(params.contrast, x) + mean


def _translate(x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    assert params.shift_y is not None and params.shift_x is not None
    B, C, H, W = x.shape
    py, px = params.max_shift
    padded = F.pad(x, [px, px, py, py])  # zeros: what slides in from outside the frame
    # Output pixel (i, j) reads padded pixel (i + pad - shift, j + pad - shift): a per-sample integer shift as
    # one gather, so the gradient reaches exactly the input pixels that are still in view.
    rows = torch.arange(H, device=x.device) + py - params.shift_y[:, None]  # [B, H]
    cols = torch.arange(W, device=x.device) + px - params.shift_x[:, None]  # [B, W]
    batch = torch.arange(B, device=x.device)[:, None, None]
    moved = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # advanced indices first: [B, H, W, C]
    return rearrange(moved, "b h w c -> b c h w")


def _cutout(x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    assert params.cutout_top is not None and params.cutout_left is not None and params.cutout_on is not None
    B, C, H, W = x.shape
    ch, cw = params.cutout_size
    rows = torch.arange(H, device=x.device)[None, :]
    cols = torch.arange(W, device=x.device)[None, :]
    top, left = params.cutout_top[:, None], params.cutout_left[:, None]
    in_rows = (rows >= top) & (rows < top + ch)  # [B, H]
    in_cols = (cols >= left) & (cols < left + cw)  # [B, W]
    erased = in_rows[:, :, None] & in_cols[:, None, :] & params.cutout_on[:, None, None]  # [B, H, W]
    return x * rearrange((~erased).to(x.dtype), "b h w -> b 1 h w")


_OPS = {"color": _color, "translation": _translate, "cutout": _cutout}


def apply_augment(x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    """Apply a parameter draw to images [B, C, H, W] (any range; DiffAugment's constants assume [-1, 1])."""
    B, _, H, W = x.shape
    if params.policy and (H, W) != (params.height, params.width):
        raise ValueError(f"params were drawn for {params.height}x{params.width} images, got {H}x{W}")
    drawn = [v for v in vars(params).values() if isinstance(v, torch.Tensor)]
    if drawn and drawn[0].shape[0] != B:
        raise ValueError(f"params were drawn for a batch of {drawn[0].shape[0]}, got {B}")
    for name in params.policy:
        x = _OPS[name](x, params)
    return x


def diff_augment(
    x: torch.Tensor,
    policy: tuple[str, ...] | list[str] = AUGMENT_POLICIES,
    p: float = 1.0,
    generator: torch.Generator | None = None,
    translation_ratio: float = 0.125,
    cutout_ratio: float = 0.5,
) -> torch.Tensor:
    """DiffAugment: draw parameters for this batch and apply them. Call it on real and fake batches alike."""
    if not policy:
        return x
    B, _, H, W = x.shape
    params = sample_augment_params(B, H, W, policy, p, generator, x.device, translation_ratio, cutout_ratio)
    return apply_augment(x, params)


def _sign(v: float) -> int:
    return (v > 0) - (v < 0)


class AdaptiveAugment:
    """DiffAugment whose probability p follows D's overconfidence on reals (Karras et al. 2020, ADA).

    Every ``interval`` observed batches: r_t = E[sign(D(real))] over them, and
    p += sign(r_t - target) * images_seen / speed_images, clipped to [0, 1]; images_seen = batch * interval.
    With ``adaptive`` off, p stays at its configured value and r_t is still measured (worth logging).
    Under data parallelism, observe logits gathered across processes so every replica moves p alike.
    """

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg
        self.p = float(cfg.p)
        self.last_rt: float | None = None
        self._sign_sum: torch.Tensor | None = None  # stays on D's device: no host sync until an adjustment
        self._images = 0
        self._batches = 0

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return diff_augment(
            x, self.cfg.policy, self.p, generator, self.cfg.translation_ratio, self.cfg.cutout_ratio
        )

    def observe(self, real_logits: torch.Tensor) -> float:
        """Record D's logits on (augmented) reals; adjusts p once ``interval`` batches are in. Returns p."""
        signs = torch.sign(real_logits.detach().float()).sum()
        self._sign_sum = signs if self._sign_sum is None else self._sign_sum + signs
        self._images += real_logits.numel()
        self._batches += 1
        if self._batches >= self.cfg.interval:
            self._adjust()
        return self.p

    def _adjust(self) -> None:
        assert self._sign_sum is not None
        rt = float(self._sign_sum) / max(self._images, 1)
        if self.cfg.adaptive:
            step = _sign(rt - self.cfg.target) * self._images / self.cfg.speed_images
            self.p = min(max(self.p + step, 0.0), 1.0)
        self.last_rt = rt
        self._sign_sum, self._images, self._batches = None, 0, 0

    def state_dict(self) -> dict[str, Any]:
        # Plain numbers only (weights_only-safe); the partial accumulators too, so a resume is exact.
        return {
            "p": self.p,
            "last_rt": self.last_rt,
            "sign_sum": 0.0 if self._sign_sum is None else float(self._sign_sum),
            "images": self._images,
            "batches": self._batches,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p = float(state["p"])
        self.last_rt = None if state.get("last_rt") is None else float(state["last_rt"])
        self._images = int(state.get("images", 0))
        self._batches = int(state.get("batches", 0))
        self._sign_sum = torch.tensor(float(state.get("sign_sum", 0.0))) if self._batches else None
