"""``gan-aug generate``: synthetic faces or K-frame clips of chosen classes, in one domain's style, written as
an ordinary dataset (PNG frames + ``manifest.csv``, ``domain=synthetic``) that the manifest reader takes in.

    gan-aug generate --checkpoint runs/gan/checkpoints/last.pt --out data/gan_fill --fill-to-max --clip-len 8

Layout: a face is ``DIR/<class>/<id>.png``, a clip is ``DIR/<class>/<id>/00001.png ...``. Every sample's
latent comes from its own generator seeded by (seed, class, number), so the same arguments give the same bytes
and asking for more samples of a class keeps the first ones. G_ema and its config come from the checkpoint.
"""

from __future__ import annotations

import csv
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize
from torchvision.io import write_png

from expr_common.accelerator import default_device
from expr_common.checkpoint import CheckpointError, load_checkpoint
from expr_common.data import manifest as manifest_csv
from expr_common.data.manifest import MANIFEST
from expr_common.errors import ExprError
from expr_common.labels import CLASS_NAMES, parse_label
from expr_common.logs import progress
from expr_common.run_lock import lock_run_dir
from gan_aug.config import domain_index
from gan_aug.networks import build_networks
from gan_aug.run_config import stored_config

WALK_SCALE = 0.35  # size of a clip's latent excursion around its base z: moves the expression, keeps the face


class GenerateError(ExprError, ValueError):
    """The request cannot be met as asked (bad counts, a checkpoint without class counts, an occupied DIR)."""


@dataclass(frozen=True)
class GenerateRequest:
    """What ``gan-aug generate`` asks of a checkpoint in either mode: where the samples go, how many of each
    class (one of ``per_class``, ``fill_to_max``, ``counts``) and how they are drawn. The command line builds
    one from its flags; a script builds one directly."""

    checkpoint: str | Path
    out_dir: str | Path
    per_class: int | None = None
    fill_to_max: bool = False
    counts: dict[int, int] | str | None = None  # {class index: n} or "Fear=500,Disgust=500"
    clip_len: int = 1  # frames per sample (1 = single faces)
    seed: int = 0
    batch_size: int = 64  # images per forward pass
    device: str | None = None  # default: cuda if available
    overwrite: bool = False  # write into an out_dir that already holds a manifest

    def __post_init__(self) -> None:
        if self.clip_len < 1 or self.batch_size < 1:
            sizes = f"{self.clip_len}, {self.batch_size}"
            raise GenerateError(f"--clip-len and --batch-size must be >= 1, got {sizes}")

    def planned(self, state: dict[str, Any], num_classes: int, domains: list, target: str) -> dict[int, int]:
        """Samples per class index (:func:`plan_counts`) for a checkpoint's ``state``, its GAN's ``domains``
        and ``target`` domain (the one ``fill_to_max`` tops up)."""
        fill = (target, domains.index(target)) if target in domains else None
        if self.fill_to_max and fill is None:
            raise GenerateError(f"--fill-to-max: the GAN's training data has no {target} frames")
        counts = parse_counts(self.counts) if isinstance(self.counts, str) else self.counts
        return plan_counts(
            state, num_classes, per_class=self.per_class, fill_to_max=self.fill_to_max, counts=counts,
            clip_len=self.clip_len, **({"fill_domain": fill} if fill else {}),
        )  # fmt: skip


@dataclass(frozen=True)
class SampleRequest(GenerateRequest):
    """``--mode sample``: faces drawn from noise in the style of ``domain`` (default the GAN's target)."""

    domain: str | None = None
    truncation: float | None = None  # redraw latent entries with |z| > truncation


@dataclass
class GenerateResult:
    out: Path
    manifest: Path
    counts: dict[str, int] = field(default_factory=dict)  # class name -> samples written
    clip_len: int = 1


def parse_counts(text: str) -> dict[int, int]:
    """``"Fear=500,Disgust=500"`` -> {3: 500, 2: 500}; any spelling :func:`parse_label` knows."""
    counts: dict[int, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise GenerateError(f"--counts item {part!r} must look like Class=N")
        try:
            label, n = parse_label(name.strip()), int(value)
        except ValueError as exc:
            raise GenerateError(f"--counts item {part!r}: {exc}") from None
        if label < 0 or n < 0 or label in counts:
            raise GenerateError(f"--counts item {part!r}: a class (once) and a count >= 0 expected")
        counts[label] = n
    if not counts:
        raise GenerateError("--counts is empty")
    return counts


def plan_counts(
    state: dict[str, Any],
    num_classes: int,
    *,
    per_class: int | None,
    fill_to_max: bool,
    counts: dict[int, int] | None,
    clip_len: int,
    fill_domain: tuple[str, int] = ("affwild2", domain_index("affwild2")),
) -> dict[int, int]:
    """Samples per class for exactly one of the three modes. ``fill_to_max`` tops every class up to the
    largest real training class of ``fill_domain`` (name, index in the GAN's table; the target, Aff-Wild2 by
    default), counted in frames for single faces and in cached clips for clips, so that one synthetic
    sample stands for one real one (counts recorded in the checkpoint by training). A class the target has
    no sample of (SFEW's 7 classes have no Other) is not invented: ``--counts`` asks for one explicitly."""
    if sum(x is not None and x is not False for x in (per_class, counts, fill_to_max or None)) != 1:
        raise GenerateError("give exactly one of --per-class, --fill-to-max, --counts")
    if per_class is not None:
        if per_class < 0:
            raise GenerateError(f"--per-class must be >= 0, got {per_class}")
        return {c: per_class for c in range(num_classes)}
    if counts is not None:
        if any(c >= num_classes for c in counts):
            raise GenerateError(f"--counts names a class outside the model's {num_classes} classes")
        return dict(sorted(counts.items()))
    key = "real_clip_counts" if clip_len > 1 else "real_frame_counts"
    if key not in state:
        raise GenerateError(f"--fill-to-max: the checkpoint has no {key} (it predates class-count recording)")
    real = state[key][:, fill_domain[1]].tolist()  # [C, D] -> this domain's column
    if max(real) == 0:
        raise GenerateError(f"--fill-to-max: the checkpoint's training data has no {fill_domain[0]} frames")
    top = max(real)
    return {c: top - n for c, n in enumerate(real) if 0 < n < top}


def sample_generator(seed: int, label: int, number: int) -> torch.Generator:
    mixed = np.random.SeedSequence([seed, label, number]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(mixed[0]) << 32 | int(mixed[1]))


def truncated_normal(
    shape: tuple[int, ...], truncation: float | None, generator: torch.Generator
) -> torch.Tensor:
    """N(0, I) with every entry whose |z| > truncation redrawn (BigGAN's truncation trick)."""
    z = torch.randn(shape, generator=generator)
    if truncation is None:
        return z
    if truncation <= 0:
        raise GenerateError(f"--truncation must be positive, got {truncation}")
    while True:
        outside = z.abs() > truncation
        if not outside.any():
            return z
        z[outside] = torch.randn(int(outside.sum()), generator=generator)


def latent_walk(
    base: torch.Tensor, clip_len: int, truncation: float | None, generator: torch.Generator
) -> torch.Tensor:
    """[K, z_dim]: the base z plus a smooth excursion through a few random anchors (the first anchor is 0,
    so frame 1 is the base face); cosine easing between anchors keeps the motion free of jumps."""
    if clip_len == 1:
        return base[None]
    anchors = max(2, math.ceil(clip_len / 8) + 1)  # one new direction about every 8 frames
    offsets = torch.randn(anchors, base.numel(), generator=generator) * WALK_SCALE
    offsets[0] = 0.0
    t = torch.linspace(0, anchors - 1, clip_len)  # [K] position along the anchors
    i = t.floor().long().clamp(max=anchors - 2)
    w = ((1 - torch.cos(math.pi * (t - i))) / 2)[:, None]  # eased fraction in [0, 1]
    z = base[None] + torch.lerp(offsets[i], offsets[i + 1], w)
    return z.clamp(-truncation, truncation) if truncation is not None else z


def load_generator(checkpoint: str | Path, device: str | torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """G_ema (the sampling or the editing generator) rebuilt from the config stored in the checkpoint (no
    YAML needed), in eval mode."""
    state = load_checkpoint(checkpoint)
    if "G_ema" not in state:  # checked before its config is read: another kind's config fits no GAN schema
        kind = "a recognizer checkpoint (`recognizer train`)" if "model" in state else "not a GAN checkpoint"
        raise CheckpointError(
            f"{checkpoint} is {kind}: it holds no G_ema; give a `gan-aug train` checkpoint (last.pt, best.pt)"
        )
    config = stored_config(state, checkpoint)
    G, _ = build_networks(config.model)
    G.load_state_dict(state["G_ema"])
    G.eval()
    for module in G.modules():  # bake spectral norm in: in eval mode it is a fixed rescaling of each weight
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return G.to(device).requires_grad_(False), state


def _remove_listed(out: Path, manifest: Path) -> None:
    """Delete what an earlier manifest in ``out`` lists (only inside ``out``), so no stale sample survives."""
    root = out.resolve()
    with manifest.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            path = (out / row.get("frames", "")).resolve()
            if root in path.parents:
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    manifest.unlink()


def _write_sample(out: Path, class_name: str, sample_id: str, frames: torch.Tensor) -> str:
    """A face as ``<class>/<id>.png``, a clip as ``<class>/<id>/00001.png...``; returns the relative path."""
    if len(frames) == 1:
        (out / class_name).mkdir(parents=True, exist_ok=True)
        relative = f"{class_name}/{sample_id}.png"
        write_png(frames[0], str(out / relative))
        return relative
    relative = f"{class_name}/{sample_id}"
    (out / relative).mkdir(parents=True, exist_ok=True)
    for k, frame in enumerate(frames):  # 1-based, 5 digits: Aff-Wild2's own frame naming
        write_png(frame, str(out / relative / f"{k + 1:05d}.png"))
    return relative


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] as uint8 images on the CPU (what saving them as files gives)."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()  # [B, 3, H, W]


KIND_ERRORS = {
    "sample": "{checkpoint} is an editing GAN: it edits real faces (--mode edit --from DATA)",
    "edit": "--mode edit: {checkpoint} is a sampling GAN (model.kind: sample)",
}


def open_request(checkpoint, out_dir, kind: str, device: str | None, overwrite: bool):
    """What both generation modes start with: (out, manifest, G_ema, checkpoint state, its config), after
    refusing an occupied ``out_dir`` and a checkpoint of the other ``kind``."""
    out = Path(out_dir)
    manifest = out / MANIFEST
    if manifest.exists() and not overwrite:
        raise GenerateError(f"{manifest} exists: choose another --out or pass --overwrite")
    G, state = load_generator(checkpoint, default_device(device))
    config = stored_config(state, checkpoint)
    if config.model.kind != kind:
        raise GenerateError(KIND_ERRORS[kind].format(checkpoint=checkpoint))
    lock_run_dir(out)  # one writer per folder; then the manifest again, as another may have just finished
    if manifest.exists() and not overwrite:
        raise GenerateError(f"{manifest} exists: choose another --out or pass --overwrite")
    return out, manifest, G, state, config


def generate(request: SampleRequest) -> GenerateResult:
    """Write the samples and ``manifest.csv`` into ``request.out_dir`` in the style of ``request.domain`` (a
    name of the GAN's domain table; default its target domain); returns what was written."""
    r = request
    out, manifest, G, state, config = open_request(r.checkpoint, r.out_dir, "sample", r.device, r.overwrite)
    domains, domain = config.model.domains, r.domain or config.target_domain
    if domain not in domains:
        raise GenerateError(f"--domain {domain}: this GAN was trained on the domains {', '.join(domains)}")
    d = domains.index(domain)
    plan = r.planned(state, G.num_classes, domains, config.target_domain)
    if manifest.exists():  # only once the request is known to be valid
        _remove_listed(out, manifest)
    device_ = next(G.parameters()).device
    rows: list[dict[str, str]] = []
    bar = progress(total=sum(plan.values()), desc="generate", unit="sample")
    for label, n in plan.items():
        name = CLASS_NAMES[label]
        per_batch = max(1, r.batch_size // r.clip_len)  # whole clips per forward pass
        for first in range(0, n, per_batch):
            numbers = range(first, min(n, first + per_batch))
            z = []
            for number in numbers:
                gen = sample_generator(r.seed, label, number)
                base = truncated_normal((G.cfg.z_dim,), r.truncation, gen)
                z.append(latent_walk(base, r.clip_len, r.truncation, gen))
            zs = torch.cat(z).to(device_)  # [samples * K, z_dim]
            y = torch.full((len(zs),), label, device=device_)
            with torch.no_grad():
                images = to_uint8(G(zs, y, torch.full_like(y, d)))
            for j, number in enumerate(numbers):
                sample_id = f"gan-{domain}-s{r.seed}-{name.lower()}-{number:05d}"
                relative = _write_sample(out, name, sample_id, images[j * r.clip_len : (j + 1) * r.clip_len])
                rows.append(
                    {"sample_id": sample_id, "frames": relative, "audio": "", "label": name, "split": "train"}
                    | {"subject": sample_id, "domain": "synthetic"}
                )
            bar.update(len(numbers))
    bar.close()
    out.mkdir(parents=True, exist_ok=True)
    manifest_csv.write(manifest, rows)
    return GenerateResult(out, manifest, {CLASS_NAMES[c]: n for c, n in plan.items()}, r.clip_len)
