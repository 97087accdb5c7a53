"""Typed config sections for the recognizer's networks and losses (docs/method.md).

Constructors take their own section (``RHCNN(cfg.visual)``). Where the paper is silent the default is ours,
and the comment on its line says why. Validation happens in ``__post_init__`` so that a bad YAML value fails
at load time (``expr_common.config.from_dict`` turns the ``ValueError`` into a ``ConfigError`` naming the
key).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from expr_common.labels import COARSE_GROUP_NAMES, DEFAULT_COARSE_GROUPS, DEFAULT_MU, NUM_CLASSES, mu_matrix

# The paper fixes GCSA at 4 channel groups and a C/4 bottleneck, so GCSA inputs need C divisible by 4.
GCSA_GROUPS = 4
FUSION_RANGE = range(1, 6)  # the paper's 0 < m, n < 6, integers
# stem_stride "auto": the residual stages start on a map of at least this side. The paper's 112-px crops get
# the usual 4x stem (28 px); a 48-px face gets a 2x stem (24 px) instead of being cut to 12 px (issue 15).
STEM_MIN_MAP = 24
# stem_pool "auto": the audio branches see one log-mel step per this many ms (40 ms, a quarter of a syllable).
AUDIO_STEM_HOP_MS = 40.0


# GCSA's gates at initialisation, and their gain: 0.5 everywhere, random 7x7 convs, or "identity": gates
# 2 * sigmoid, uniform at 1, so GCSA starts as its input (channel-shuffled) instead of 0.25 times it
GCSA_GAINS = {"uniform": 1.0, "random": 1.0, "identity": 2.0}
GCSA_STARTS = tuple(GCSA_GAINS)


def check_gcsa_start(value: str) -> None:
    if value not in GCSA_STARTS:
        raise ValueError(f"gcsa_start must be {' or '.join(GCSA_STARTS)}, got {value!r}")


def _check_odd(name: str, values: tuple[int, ...]) -> None:
    # Odd kernels keep "same" padding symmetric, so feature maps stay aligned with the input grid.
    if any(k < 1 or k % 2 == 0 for k in values):
        raise ValueError(f"{name} must hold positive odd kernel sizes, got {values}")


def _resolved_pair(value: object, key: str, resolver: str) -> tuple[int, int]:
    """A stem's (a, b) factors; an int means both; "auto" must have been resolved from the data first."""
    if value == "auto":
        raise ValueError(
            f"{key} is 'auto' and unresolved: load the config with load_recognizer_config (it reads the "
            f"data config) or use {resolver}"
        )
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))  # type: ignore[index]


def _check_widths(name: str, widths: tuple[int, ...]) -> None:
    if not widths or any(w < 1 for w in widths):
        raise ValueError(f"{name} must be a non-empty list of positive channel counts, got {widths}")


@dataclass
class VisualConfig:
    """RHCNN, the per-frame residual hybrid CNN of the visual branch."""

    in_channels: int = 3  # RGB face crops; 1 = a grayscale stem (RGB frames are reduced to luma first)
    kernel_size: int = 3  # N of the NxN stem convs and depthwise convs; 3 is the cheapest odd size
    stem_widths: tuple[int, ...] = (32, 64)  # the paper's two NxN conv blocks before the residual part
    # Strides of the two stem convs: one int for both, a pair, or "auto" (resolved from the data's image
    # size when the recognizer config is loaded, and stored resolved): the largest of 4x, 2x, 1x that leaves
    # the residual stages at least STEM_MIN_MAP px (112 -> [2, 2], 64 and 48 -> [2, 1], 32 -> [1, 1]).
    stem_stride: int | tuple[int, int] | Literal["auto"] = "auto"
    stage_widths: tuple[int, ...] = (64, 128, 256)  # residual stages; every stage after the first halves H, W
    blocks_per_stage: int = 2  # residual blocks per stage: 6 blocks in all, a small net for ~100k faces
    expansion: int = 1  # middle width of a block = expansion * out width; 1 keeps the 1x1 convs cheap
    # Each residual block's last batch norm starts at gamma 0, so every block starts as its skip path
    # (Goyal et al. 2017; torchvision's ResNet option of the same name): a deep net trains like a shallow one
    # at first. A lever for the slow convergence on small posed sets.
    zero_init_residual: bool = False
    pointwise_groups: int = 1  # >1 makes the 1x1 convs grouped (ShuffleNet), where the shuffle mixes groups
    shuffle_groups: int = 4  # channel shuffle after each residual block, 4 groups as in GCSA
    gcsa: bool = True  # GCSA on the last per-frame feature map; false = the paper's "Base" ablation row
    # GCSA's gates at initialisation (gcsa.GCSA): "identity" (gates 2 * sigmoid, starting at 1: GCSA begins
    # as its input), "uniform" (sigmoid gates starting at 0.5: a quarter of its input) or "random" (random
    # 7x7 convs: noise over the few positions of the last map). Identity won on the real bench (SFEW 0.185
    # against uniform's 0.152, TWDB 0.443 against 0.366: docs/results.md, "Real data").
    gcsa_start: Literal["uniform", "random", "identity"] = "identity"
    # GCSA's spatial convs (the paper's 7x7): on a 6-8 px map two 7x7 convs hold most of the branch's weights
    # (1.6 M of 2.0 M at the default widths); 3 is a ninth of that over the same few positions
    gcsa_kernel: int = 7
    temporal: Literal["mean", "tconv"] = "mean"  # frame aggregation; mean is order-free and fine for K=1
    temporal_kernel: int = 3  # width of the optional temporal conv (odd, "same" padded, so any K works)
    dropout: float = 0.2  # before the classifier head (paper, section 4.2)
    # Outside training, each frame's features are the mean of the frame's and its mirror image's (test-time
    # flip: a face's expression is near-symmetric). Off in the paper (paper.yaml).
    test_flip: bool = True

    def __post_init__(self) -> None:
        if self.in_channels < 1:
            raise ValueError(f"in_channels must be positive, got {self.in_channels}")
        _check_odd("kernel_size", (self.kernel_size,))
        _check_odd("temporal_kernel", (self.temporal_kernel,))
        _check_odd("gcsa_kernel", (self.gcsa_kernel,))
        if len(self.stem_widths) != 2:
            raise ValueError(f"stem_widths must have 2 entries (two conv blocks), got {self.stem_widths}")
        _check_widths("stem_widths", self.stem_widths)
        _check_widths("stage_widths", self.stage_widths)
        strides = (self.stem_stride,) * 2 if isinstance(self.stem_stride, int) else self.stem_stride
        if self.stem_stride != "auto" and (len(strides) != 2 or any(s not in (1, 2) for s in strides)):
            raise ValueError(f"stem_stride must be 1, 2, a pair of them or auto, got {self.stem_stride}")
        if self.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 3 (RGB) or 1 (grayscale), got {self.in_channels}")
        if self.blocks_per_stage < 1 or self.expansion < 1:
            raise ValueError("blocks_per_stage and expansion must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        for width in self.stage_widths:
            mid = width * self.expansion
            if width % self.shuffle_groups or mid % self.pointwise_groups or width % self.pointwise_groups:
                raise ValueError(
                    f"stage width {width} (middle {mid}) must be divisible by shuffle_groups "
                    f"{self.shuffle_groups} and pointwise_groups {self.pointwise_groups}"
                )
        check_gcsa_start(self.gcsa_start)
        if self.gcsa and self.stage_widths[-1] % GCSA_GROUPS:
            raise ValueError(f"GCSA needs the last stage width divisible by {GCSA_GROUPS}")

    @property
    def out_dim(self) -> int:
        return self.stage_widths[-1]

    @property
    def stem_strides(self) -> tuple[int, int]:
        return _resolved_pair(self.stem_stride, "model.visual.stem_stride", "for_image_size(size)")

    def for_image_size(self, image_size: int) -> VisualConfig:
        """This section with an "auto" stem resolved for ``image_size``-px frames (others unchanged)."""
        if self.stem_stride != "auto":
            return self
        for strides in ((2, 2), (2, 1)):
            if image_size // (strides[0] * strides[1]) >= STEM_MIN_MAP:
                return replace(self, stem_stride=strides)
        return replace(self, stem_stride=(1, 1))


@dataclass
class AudioConfig:
    """MCNN, the multi-branch CNN of the audio branch, on a log-mel spectrogram [B, 1, F, T]."""

    in_channels: int = 1  # one log-mel plane (mono audio)
    input_norm: bool = True  # BatchNorm on the input plane: the log-mel's dB offset and scale stop mattering
    branch_widths: tuple[int, ...] = (32, 64)  # conv blocks per branch; the paper has two per branch
    local_kernel: tuple[int, ...] = (3, 3)  # (freq, time): square, local patterns
    temporal_kernel: tuple[int, ...] = (3, 9)  # long in time: 9 frames = 90 ms at a 10 ms hop
    spectral_kernel: tuple[int, ...] = (9, 3)  # long in frequency: 9 of 64 mel bands, formant-scale spans
    dilation_growth: int = 2  # block i is dilated growth**i: a wider receptive field at the same parameters
    pool: int = 2  # max-pool after each block; 64x300 -> 16x75 before GCSA
    # Average-pool the log-mel by (freq, time) before the three branches: (1, 1) = the paper's full-resolution
    # input; "auto" (resolved from the data's n_mels and hop when the config is loaded, and stored resolved)
    # halves 40+ mel bands and brings the hop to AUDIO_STEM_HOP_MS: 64 mels / 10 ms -> (2, 4), 9.4x faster
    # training at 4 s windows (benchmarks/audio_branch.py); 40 mels / 20 ms -> (2, 2). Neither lost A-only
    # macro-F1 on the corpus's voices over 3 seeds (docs/usage.md, "The recognizer").
    stem_pool: tuple[int, int] | Literal["auto"] = "auto"
    gcsa: bool = True  # GCSA on the concatenated branches; false = the "Base" ablation row
    # "random" here: the audio map is long in time (75 steps), and on the demo the uniform start cost A and
    # V+A macro-F1 (docs/results.md, "Demo results"; VisualConfig.gcsa_start).
    gcsa_start: Literal["uniform", "random", "identity"] = "random"
    dropout: float = 0.2  # before the classifier head (paper, section 4.2)

    def __post_init__(self) -> None:
        if self.in_channels < 1:
            raise ValueError(f"in_channels must be positive, got {self.in_channels}")
        _check_widths("branch_widths", self.branch_widths)
        for name in ("local_kernel", "temporal_kernel", "spectral_kernel"):
            kernel = getattr(self, name)
            if len(kernel) != 2:
                raise ValueError(f"{name} must be (freq, time), got {kernel}")
            _check_odd(name, kernel)
        if self.dilation_growth < 1 or self.pool < 1:
            raise ValueError("dilation_growth and pool must be at least 1")
        if self.stem_pool != "auto" and (len(self.stem_pool) != 2 or min(self.stem_pool) < 1):
            raise ValueError(f"stem_pool must be (freq, time) factors >= 1, got {self.stem_pool}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        check_gcsa_start(self.gcsa_start)
        if self.gcsa and self.out_dim % GCSA_GROUPS:
            raise ValueError(f"GCSA needs 3 * branch_widths[-1] = {self.out_dim} divisible by {GCSA_GROUPS}")

    @property
    def out_dim(self) -> int:
        return 3 * self.branch_widths[-1]  # local, temporal and spectral branches concatenated

    @property
    def stem_pools(self) -> tuple[int, int]:
        return _resolved_pair(self.stem_pool, "model.audio.stem_pool", "for_spectrogram(n_mels, hop_ms)")

    def for_spectrogram(self, n_mels: int, hop_ms: float) -> AudioConfig:
        """This section with an "auto" stem pool resolved for the log-mel's bands and hop."""
        if self.stem_pool != "auto":
            return self
        freq = 2 if n_mels >= 40 else 1
        time = max(1, round(AUDIO_STEM_HOP_MS / hop_ms))
        return replace(self, stem_pool=(freq, time))


@dataclass
class FusionConfig:
    """Proportion criterion P = (m * P_a + n * P_v) / (m + n); the grid search over 1..5 picks m, n."""

    m: int = 1  # audio weight; equal weights until validation (fusion_grid) says otherwise
    n: int = 1  # video weight

    def __post_init__(self) -> None:
        for name, value in (("m", self.m), ("n", self.n)):
            if not isinstance(value, int) or isinstance(value, bool) or value not in FUSION_RANGE:
                raise ValueError(
                    f"fusion {name} must be an integer in 1..5 (paper: 0 < {name} < 6), got {value}"
                )


@dataclass
class LossConfig:
    """Coarse-fine loss (or plain NLL) on the fused and, as auxiliary terms, the per-branch probabilities."""

    kind: Literal["coarse_fine", "ce"] = "coarse_fine"  # the paper's loss; "ce" is the ablation without CF
    coarse_groups: tuple[int, ...] = DEFAULT_COARSE_GROUPS  # class -> valence-arousal quadrant (labels.py)
    mu: tuple[float, ...] = DEFAULT_MU  # mu12 mu13 mu14 mu23 mu24 mu34 (labels.py: adjacent 0.5, opposite 1)
    aux_weight: float = 0.5  # per-branch terms keep each branch a classifier on its own (missing modality)
    eps: float = 1e-8  # probabilities are clamped here before the log: a fused P can hold exact zeros
    # Share of the target spread evenly over the classes (Szegedy et al. 2016); 0 = the paper's hard labels.
    label_smoothing: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if len(self.coarse_groups) != NUM_CLASSES:
            raise ValueError(
                f"coarse_groups needs one group per class ({NUM_CLASSES}), got {self.coarse_groups}"
            )
        if any(not 0 <= g < len(COARSE_GROUP_NAMES) for g in self.coarse_groups):
            raise ValueError(
                f"coarse_groups must be in 0..{len(COARSE_GROUP_NAMES) - 1}, got {self.coarse_groups}"
            )
        mu_matrix(self.mu)  # checks the count
        if any(m < 0 for m in self.mu):
            raise ValueError(f"mu coefficients are penalties and must be >= 0, got {self.mu}")
        if self.aux_weight < 0:
            raise ValueError(f"aux_weight must be >= 0, got {self.aux_weight}")
        if not 0.0 < self.eps < 1e-2:
            raise ValueError(f"eps must be a small positive number, got {self.eps}")


@dataclass
class ModelConfig:
    """The whole recognizer: which branches exist, their sections, the fusion and the class count."""

    visual: VisualConfig = field(default_factory=VisualConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    num_classes: int = NUM_CLASSES  # the ABAW label space
    modalities: Literal["av", "v", "a"] = "av"  # "v"/"a" build one branch only (ablation, CK+-only data)

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")

    @property
    def use_video(self) -> bool:
        return "v" in self.modalities

    @property
    def use_audio(self) -> bool:
        return "a" in self.modalities
