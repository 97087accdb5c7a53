"""Typed config of the conditional GAN: networks, loss, augmentation and EMA.

Each section is the argument of the one class that uses it (``Generator(cfg.generator, ...)``), and the whole
tree loads from YAML through ``expr_common.config.load_config(path, GanModelConfig)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from expr_common.data.refs import SYNTHETIC_DOMAIN, valid_domain
from expr_common.labels import NUM_CLASSES

if TYPE_CHECKING:
    import torch

# The default domain table: a GAN's domain index is the position in its own table (GanModelConfig.domains),
# which training sets from its data and stores in the checkpoint; these are the three datasets' names, in the
# order they were added. Aff-Wild2 is the default target style that `generate` asks for.
DOMAINS: tuple[str, ...] = ("ckplus", "afew", "affwild2")
NUM_DOMAINS = len(DOMAINS)

SUPPORTED_RESOLUTIONS: tuple[int, ...] = (32, 48, 64, 128)
AUGMENT_POLICIES: tuple[str, ...] = ("color", "translation", "cutout")

# Channel multipliers (times `width`) of G, from the first feature map to the last up-block's output; D uses
# the same numbers reversed, so the two networks mirror each other. BigGAN's 128 px table, cut short for the
# smaller sizes: the widest layers sit where the maps are smallest, where they cost the least.
DEFAULT_CHANNEL_MULTIPLIERS: dict[int, tuple[int, ...]] = {
    32: (8, 4, 2, 1),
    48: (16, 8, 4, 2, 1),
    64: (16, 8, 4, 2, 1),
    128: (16, 16, 8, 4, 2, 1),
}


def domain_index(name: str, domains: Sequence[str] = DOMAINS) -> int:
    """Index of a domain name in a domain table (the default one: ``"affwild2"`` -> 2); a clear error for
    anything else."""
    if name not in domains:
        raise ValueError(f"unknown GAN domain {name!r}: expected one of {', '.join(domains)}")
    return list(domains).index(name)


def domain_table(present: Iterable[str]) -> list[str]:
    """The domain table of training data with these domains: the default names first, in their order, then
    any other in alphabetical order (GAN output, ``synthetic``, is never one)."""
    names = set(present) - {SYNTHETIC_DOMAIN}
    return [d for d in DOMAINS if d in names] + sorted(names - set(DOMAINS))


def base_size(resolution: int) -> int:
    """Side of G's first feature map: 48 = 3 * 16 starts at 3x3, the powers of two at 4x4."""
    check_resolution(resolution)
    return 3 if resolution % 3 == 0 else 4


def num_up_blocks(resolution: int) -> int:
    """Number of 2x up-blocks from the base map to ``resolution`` (= D's number of 2x down-blocks)."""
    return int(math.log2(resolution // base_size(resolution)))


def check_labels(y: torch.Tensor, d: torch.Tensor, batch: int, num_classes: int, num_domains: int) -> None:
    """Class and domain indices of a batch for G or D: shape [batch], in range (checked on the CPU)."""
    if y.shape != (batch,) or d.shape != (batch,):
        got = f"{tuple(y.shape)} and {tuple(d.shape)}"
        raise ValueError(f"expected class and domain of shape [{batch}], got {got}")
    # Unlabelled (-1) or out-of-range indices would fail deep inside an embedding with no names. Checked on
    # CPU only: on a GPU the check would sync every step, and the embedding's own device assert fires there.
    if y.is_cuda or d.is_cuda:
        return
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"class indices must be in 0..{num_classes - 1}, got {y.tolist()}")
    if d.numel() and (int(d.min()) < 0 or int(d.max()) >= num_domains):
        raise ValueError(f"domain indices must be in 0..{num_domains - 1}, got {d.tolist()}")


def check_resolution(resolution: int) -> None:
    if resolution not in SUPPORTED_RESOLUTIONS:
        supported = ", ".join(str(r) for r in SUPPORTED_RESOLUTIONS)
        raise ValueError(f"unsupported GAN resolution {resolution}: expected one of {supported}")


def _check_multipliers(multipliers: tuple[int, ...], resolution: int, owner: str) -> None:
    expected = num_up_blocks(resolution) + 1
    if multipliers and len(multipliers) != expected:
        raise ValueError(
            f"{owner}.channel_multipliers needs {expected} entries at {resolution} px "
            f"(one per feature-map size), got {len(multipliers)}"
        )
    if any(m <= 0 for m in multipliers):
        raise ValueError(f"{owner}.channel_multipliers must be positive, got {multipliers}")


@dataclass
class GeneratorConfig:
    z_dim: int = 128  # BigGAN's latent size; split over the blocks when hierarchical_z is on
    resolution: Literal[32, 48, 64, 128] = 64  # faces are 112 px at most; 64 px is a third of the pixels
    width: int = 32  # a few thousand faces: small nets (~3-5 M params at 64 px) leave D less to memorise
    embed_dim: int = 64  # size of each of the class and domain embeddings (concatenated: 2 * embed_dim)
    channel_multipliers: tuple[int, ...] = ()  # empty = DEFAULT_CHANNEL_MULTIPLIERS[resolution]
    hierarchical_z: bool = True  # BigGAN: a chunk of z per block lets z act on every scale, not only one

    def __post_init__(self) -> None:
        check_resolution(self.resolution)
        _check_multipliers(self.channel_multipliers, self.resolution, "generator")
        if self.width <= 0 or self.embed_dim <= 0:
            raise ValueError("generator.width and generator.embed_dim must be positive")
        slots = num_up_blocks(self.resolution) + 1
        if self.z_dim < (slots if self.hierarchical_z else 1):
            raise ValueError(f"generator.z_dim={self.z_dim} is too small to give {slots} slots a chunk each")

    @property
    def multipliers(self) -> tuple[int, ...]:
        return self.channel_multipliers or DEFAULT_CHANNEL_MULTIPLIERS[self.resolution]


@dataclass
class DiscriminatorConfig:
    resolution: Literal[32, 48, 64, 128] = 64  # must equal generator.resolution
    width: int = 32  # mirrors G; D's capacity is what overfits on small data, so keep it no larger than G's
    channel_multipliers: tuple[int, ...] = ()  # empty = G's default table reversed (narrow at full size)

    def __post_init__(self) -> None:
        check_resolution(self.resolution)
        _check_multipliers(self.channel_multipliers, self.resolution, "discriminator")
        if self.width <= 0:
            raise ValueError("discriminator.width must be positive")

    @property
    def multipliers(self) -> tuple[int, ...]:
        return self.channel_multipliers or tuple(reversed(DEFAULT_CHANNEL_MULTIPLIERS[self.resolution]))


@dataclass
class AugmentConfig:
    policy: tuple[str, ...] = AUGMENT_POLICIES  # DiffAugment's full policy: best on its 10%-data BigGAN runs
    p: float = 1.0  # per-sample probability of each op; DiffAugment always augments, ADA starts from 0
    adaptive: bool = False  # ADA-style control of p; DiffAugment at p=1 already holds up on small data
    target: float = 0.6  # ADA's target for E[sign(D(real))]: above it D is overconfident, so p goes up
    speed_images: int = 500_000  # ADA's ada_kimg=500: p can move from 0 to 1 in 500k real images
    interval: int = 4  # ADA adjusts every 4 minibatches: fewer sign estimates, less noise
    translation_ratio: float = 0.125  # DiffAugment: shift up to 1/8 of the side, zero padding
    cutout_ratio: float = 0.5  # DiffAugment: erase a square half the side

    def __post_init__(self) -> None:
        unknown = [name for name in self.policy if name not in AUGMENT_POLICIES]
        if unknown:
            raise ValueError(f"unknown augment policy {unknown[0]!r}: expected names from {AUGMENT_POLICIES}")
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"augment.p must be in [0, 1], got {self.p}")
        if self.speed_images <= 0 or self.interval <= 0:
            raise ValueError("augment.speed_images and augment.interval must be positive")


@dataclass
class LossConfig:
    kind: Literal["hinge"] = "hinge"  # BigGAN's loss, the one LeCam's and DiffAugment's results used
    lecam_weight: float = 0.3  # Tseng et al. use 0.3 on limited CIFAR with DiffAugment; 0 turns it off
    lecam_decay: float = 0.99  # EMA decay of the anchors (ema_losses default in the LeCam-GAN code)
    lecam_start_step: int = 1000  # LeCam-GAN: anchors = current batch until then (early D is noise)
    r1_gamma: float = 0.0  # off: LeCam is the regulariser by default; StyleGAN2 uses ~0.01-10 by resolution
    r1_interval: int = 16  # lazy R1 as in StyleGAN2: every 16 D steps, scaled by 16 to keep its strength
    # Auxiliary class loss (AC-GAN style, through D's projection embedding): D learns to name the class of
    # reals, G to make fakes D names as their class. 0 = off (pure projection D). A short run needs it: the
    # projection term alone lets G ignore the class for thousands of steps.
    class_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.lecam_weight < 0 or self.r1_gamma < 0 or self.class_weight < 0:
            raise ValueError("loss.lecam_weight, loss.r1_gamma and loss.class_weight must be >= 0")
        if not 0.0 <= self.lecam_decay < 1.0:
            raise ValueError(f"loss.lecam_decay must be in [0, 1), got {self.lecam_decay}")
        if self.r1_interval <= 0:
            raise ValueError("loss.r1_interval must be positive")


@dataclass
class EmaConfig:
    half_life_kimg: float = 10.0  # StyleGAN2-ADA's ema_kimg (10 at batch 32): mostly the last ~20k images
    rampup: float | None = 0.05  # StyleGAN2-ADA: half-life <= 5% of images seen, so early G_ema is not stale

    def __post_init__(self) -> None:
        if self.half_life_kimg < 0:
            raise ValueError("ema.half_life_kimg must be >= 0")
        if self.rampup is not None and self.rampup <= 0:
            raise ValueError("ema.rampup must be positive or null")


@dataclass
class TeacherConfig:
    """A class teacher for the editing GAN (gan_aug/teacher.py): a plain CNN fitted on the labelled faces
    of ``edit.label_domains`` before the GAN starts, then frozen; G's loss adds ``weight`` times its
    cross-entropy on the edits against their target class. D's spectral-normed class head alone stayed at
    chance on real posed faces (d_class 1.84-2.06 over 800 steps, ln 7 = 1.95): G had no class signal."""

    steps: int = 0  # 0: no teacher (StarGAN's setting: D's auxiliary classifier alone)
    weight: float = 1.0
    width: int = 32  # channels of its first block (three blocks: width, 2 width, 4 width)
    lr: float = 2e-3  # AdamW, one-cycle over ``steps``
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.steps < 0 or self.weight < 0 or self.width <= 0 or self.lr <= 0 or self.batch_size <= 0:
            raise ValueError("edit.teacher: steps and weight must be >= 0; width, lr and batch_size > 0")


@dataclass
class EditConfig:
    """The editing generator (``model.kind: edit``, gan_aug/edit_networks.py) and its losses' weights."""

    width: int = 32  # channels of the first layer; StarGAN uses 64 at 128 px
    down_blocks: int = 2  # StarGAN: two stride-2 convolutions down, two up
    res_blocks: int = 4  # StarGAN uses 6 at 128 px; the faces here are smaller
    mask_bias: float = -3.0  # the mask head's start: sigmoid(-3) = 0.05, an untrained G returns ~its input
    # What the edit writes inside its mask: "colour", GANimation's colour map; or "warp", the face's own
    # pixels moved by a smooth flow field of at most ``max_shift`` (a fraction of the face's half-width;
    # X2Face / warp-guided editing). A warp can move mouth corners and brows but cannot paint new texture,
    # so no class "stamp" for a classifier to read (the colour map learnt one per class under a teacher).
    output: Literal["colour", "warp"] = "colour"
    max_shift: float = 0.15
    # The warp's control points per side: the flow is averaged onto this grid and interpolated back, so it
    # is smooth by construction (a per-pixel flow learnt ripples that fooled the teacher)
    flow_grid: int = 8
    class_weight: float = 1.0  # StarGAN's lambda_cls: D's auxiliary classifier names the edit's target class
    cycle_weight: float = 10.0  # StarGAN's lambda_rec: G(G(x, c'), c_x) ~ x
    identity_weight: float = 5.0  # G(x, c_x) ~ x: an edit to the face's own class changes nothing
    mask_weight: float = 0.1  # GANimation's lambda_A: the mask's mean (edit as few pixels as needed)
    smooth_weight: float = 1.0  # GANimation's total variation of the mask (mean squared neighbour step)
    # StarGAN's mask vector, for labels of unequal trust: only these domains' labels teach D's classifier
    # what each expression looks like (posed lab faces and movie clips); the others are edited, not learnt
    # from. Domains missing from the data are ignored; at least one must be present.
    label_domains: tuple[str, ...] = ("ckplus", "afew")
    teacher: TeacherConfig = field(default_factory=TeacherConfig)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.down_blocks < 0 or self.res_blocks < 0:
            raise ValueError("edit.width must be positive and edit.down_blocks, edit.res_blocks >= 0")
        if self.output not in ("colour", "warp") or not 0 < self.max_shift <= 1 or self.flow_grid < 1:
            raise ValueError(
                f"edit.output must be colour or warp (got {self.output!r}); "
                "edit.max_shift in (0, 1]; edit.flow_grid >= 1"
            )
        weights = (self.class_weight, self.cycle_weight, self.identity_weight, self.mask_weight)
        if min(*weights, self.smooth_weight) < 0:
            raise ValueError("edit loss weights must be >= 0")
        if not self.label_domains or not all(valid_domain(d) for d in self.label_domains):
            raise ValueError(f"edit.label_domains must be domain names, got {self.label_domains}")


@dataclass
class GanModelConfig:
    # sample: BigGAN-style, draws faces from noise; edit: StarGAN/GANimation-style, edits real faces into
    # a target class (the generator is `edit`'s, D stays the projection discriminator)
    kind: Literal["sample", "edit"] = "sample"
    num_classes: int = NUM_CLASSES  # the ABAW label space (expr_common.labels)
    # The domain table (the GAN embeds each name): set from the training data by `train`, stored in the
    # checkpoint, the names `generate --domain` accepts. Defaults to DOMAINS above.
    domains: list[str] = field(default_factory=lambda: list(DOMAINS))
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    ema: EmaConfig = field(default_factory=EmaConfig)
    edit: EditConfig = field(default_factory=EditConfig)

    @property
    def num_domains(self) -> int:
        return len(self.domains)

    def domain_index(self, name: str) -> int:
        return domain_index(name, self.domains)

    def __post_init__(self) -> None:
        if self.num_classes <= 0 or not self.domains:
            raise ValueError("num_classes must be positive and domains not empty")
        if len(set(self.domains)) != len(self.domains) or not all(valid_domain(d) for d in self.domains):
            raise ValueError(f"domains must be distinct lower-case names, got {self.domains}")
        if self.generator.resolution != self.discriminator.resolution:
            raise ValueError(
                f"generator.resolution ({self.generator.resolution}) and discriminator.resolution "
                f"({self.discriminator.resolution}) must be equal"
            )
