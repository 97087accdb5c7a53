"""Sample grids: rows = classes, columns = fixed latents, one PNG per domain; for the editing GAN, the first
row is real faces of the domain and each row below them edited to one class.

The latents (or source faces) are fixed for the whole run, so grids of successive steps show how the same
faces evolve, and the grids of one step differ only by the domain's style.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from einops import rearrange
from torch import nn
from torchvision.utils import save_image

from gan_aug.config import DOMAINS
from gan_aug.sampling import STREAM_GRID, FrameTable, step_generator

SAMPLES_DIR = "samples"


def grid_path(run_root: Path, step: int, domain: str) -> Path:
    return Path(run_root) / SAMPLES_DIR / f"step{step:07d}_{domain}.png"


def sample_grids(run_root: Path, domain: str) -> list[Path]:
    """The sample grids of ``domain`` a run has written so far, oldest first (:func:`grid_path`'s names)."""
    return sorted((Path(run_root) / SAMPLES_DIR).glob(f"step*_{domain}.png"))


def fixed_latents(seed: int, num_classes: int, columns: int, z_dim: int) -> torch.Tensor:
    """z [C * columns, z_dim], row-major over (class, column), the same for every domain."""
    z = torch.randn(columns, z_dim, generator=step_generator(seed, 0, 0, STREAM_GRID))
    return z.repeat(num_classes, 1)  # column j holds the same z in every class row


@torch.no_grad()
def save_sample_grids(
    generator: nn.Module,
    z: torch.Tensor,
    num_classes: int,
    run_root: Path,
    step: int,
    domains: Sequence[str] = DOMAINS,
) -> list[Path]:
    """One grid per domain of the GAN's table (``domains``) from ``generator`` (G_ema, put in eval mode
    here); returns the PNG paths."""
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    columns = z.shape[0] // num_classes
    y = torch.arange(num_classes).repeat_interleave(columns).to(device)  # [C * columns]
    paths = []
    for d, domain in enumerate(domains):
        images = generator(z.to(device), y, torch.full_like(y, d)).float().cpu()  # [C * cols, 3, R, R]
        path = grid_path(run_root, step, domain)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(images, path, nrow=columns, normalize=True, value_range=(-1.0, 1.0))
        paths.append(path)
    generator.train(was_training)
    return paths


def save_real_grids(table: FrameTable, resolution: int, columns: int, run_root: Path) -> list[Path]:
    """The real frames of each (class, domain) cell in the same layout (grey where a cell has none), to
    set beside the generated grids."""
    paths = []
    for d, domain in enumerate(table.domains):
        rows = []
        for c in range(table.num_classes):
            members = torch.nonzero((table.label == c) & (table.domain == d)).flatten()
            if len(members) > columns:  # spread over the cell: neighbouring rows are frames of one clip
                members = members[torch.linspace(0, len(members) - 1, columns).long()]
            images = torch.zeros(columns, 3, resolution, resolution)  # [-1, 1] zeros = mid grey
            if len(members):
                images[: len(members)] = table.images(members, resolution)
            rows.append(images)
        grid = rearrange(torch.stack(rows), "c n ch h w -> (c n) ch h w")
        path = Path(run_root) / SAMPLES_DIR / f"real_{domain}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path, nrow=columns, normalize=True, value_range=(-1.0, 1.0))
        paths.append(path)
    return paths


def edit_sources(table: FrameTable, columns: int, resolution: int) -> dict[str, torch.Tensor]:
    """Per domain, ``columns`` of its training frames spread over its rows (several people and clips):
    the faces the editing GAN's grids edit, fixed for the run."""
    sources = {}
    for d, domain in enumerate(table.domains):
        members = torch.nonzero(table.domain == d).flatten()
        if len(members):
            picks = members[torch.linspace(0, len(members) - 1, min(columns, len(members))).long()]
            sources[domain] = table.images(picks, resolution)
    return sources


@torch.no_grad()
def save_edit_grids(
    generator: nn.Module,
    sources: dict[str, torch.Tensor],
    num_classes: int,
    run_root: Path,
    step: int,
    domains: Sequence[str] = DOMAINS,
) -> list[Path]:
    """One grid per domain: the source faces, then a row per class of their edits (G_ema in eval mode)."""
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    paths = []
    for d, domain in enumerate(domains):
        if domain not in sources:
            continue
        x = sources[domain].to(device)
        rows = [x] + [
            generator(x, torch.full((len(x),), c, device=device), torch.full((len(x),), d, device=device))
            for c in range(num_classes)
        ]
        path = grid_path(run_root, step, domain)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(torch.cat(rows).float().cpu(), path, nrow=len(x), normalize=True, value_range=(-1.0, 1.0))
        paths.append(path)
    generator.train(was_training)
    return paths
