"""The recognizer's experiment config (``configs/recognizer/*.yaml``): data, model, loss, optimisation and
training. Hardware (devices, precision) comes from ``accelerate`` flags, never from here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from expr_common.checkpoint import CONFIG_KEY, CheckpointError, config_from_checkpoint
from expr_common.config import load_config
from expr_common.data.config import load_data_config
from expr_common.paths import resolve_path
from recognizer.config import GCSA_GAINS, LossConfig, ModelConfig


@dataclass
class OptimConfig:
    # Defaults measured on real recordings (docs/results.md, "Real data"): AdamW at 2e-3, weight decay 0.05,
    # cosine after 2 warm-up epochs. The paper's SGD at 1e-4 / 1e-3, constant, barely learns a few hundred
    # real samples in 20 epochs (configs/recognizer/paper.yaml keeps it).
    name: Literal["sgd", "adamw"] = "adamw"
    lr: float = 2e-3  # paper: SGD at 1e-4 for the feature extractors
    head_lr: float = 2e-3  # paper: 1e-3 for the branch (classifier) weights
    momentum: float = 0.9  # paper (SGD only)
    weight_decay: float = 0.05  # AdamW's decoupled decay; the paper does not say (paper.yaml: 5e-4)
    nesterov: bool = False
    schedule: Literal["constant", "cosine", "step"] = "cosine"  # the paper uses a constant rate
    warmup_epochs: int = 2  # linear warm-up from 0 (fresh BN statistics); 0 in the paper setup
    step_epochs: int = 100  # "step": multiply by step_gamma every this many epochs
    step_gamma: float = 0.1
    grad_clip: float = 5.0  # max global grad norm; 0 = off. Guards the first epochs of fresh BN stats
    ema_decay: float = 0.0  # weight EMA per step (recognizer/ema.py), e.g. 0.999; 0 = off

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.head_lr <= 0:
            raise ValueError("optim.lr and optim.head_lr must be positive")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"optim.ema_decay must be in [0, 1), got {self.ema_decay}")


@dataclass
class ExtraTrainData:
    """More training data (recognizer/extra_data.py): GAN output or the source datasets' own samples, under
    a per-class policy. Used for training only, never for validation or test."""

    name: str = "extra"  # how logs, ``extra_data.json`` and the report call it
    data: str | None = None  # a data config YAML (its own cache) ...
    overrides: list[str] = field(default_factory=list)  # ... with --set style overrides
    manifest: str | None = None  # ... or a manifest / `gan-aug generate` folder, read with the main config
    sources: list[str] | None = None  # which of its sources (None = all)
    target_share: float | None = 0.5  # fill each class up to this share of the largest real class; None = all
    max_ratio: float | None = 1.0  # at most this many extra samples per real one, per class; None = no cap
    weight: float = 1.0  # loss weight of its samples relative to the main training data

    def __post_init__(self) -> None:
        if (self.data is None) == (self.manifest is None):
            raise ValueError(f"extra_train {self.name!r}: give exactly one of data and manifest")
        if self.weight < 0 or (self.max_ratio is not None and self.max_ratio < 0):
            raise ValueError(f"extra_train {self.name!r}: weight and max_ratio must be >= 0")
        if self.target_share is not None and self.target_share < 0:
            raise ValueError(f"extra_train {self.name!r}: target_share must be >= 0")


@dataclass
class ExtraPolicies:
    """What ``recognizer train --with-synthetic`` / ``--with-source-real`` add (the same policy fields as
    ``ExtraTrainData``). Synthetic clips are video only (``has_audio=False``)."""

    synthetic_dir: str | None = None  # `gan-aug generate --out` folder; `--synthetic DIR` overrides
    synthetic: ExtraTrainData = field(
        default_factory=lambda: ExtraTrainData(name="synthetic", manifest="", weight=0.5)
    )
    source_real_sources: list[str] = field(default_factory=lambda: ["afew", "ckplus"])  # of cfg.data
    source_real: ExtraTrainData = field(
        default_factory=lambda: ExtraTrainData(name="source_real", data="", weight=0.5)
    )


@dataclass
class TrainConfig:
    epochs: int = 300  # paper
    batch_size: int = 32  # the paper's 16 is noisier for AdamW on small sets (paper.yaml keeps 16)
    eval_batch_size: int = 64
    seed: int = 0
    deterministic: bool = False  # deterministic kernels: bit-exact resume on CPU, slower on GPU
    balanced: bool = False  # class-balanced sampling of the training windows (rare classes decide F1)
    # Chance that a V+A training sample hides its audio or its video (one of the two, evenly): keeps the
    # branches learning on their own inside the fused loss (recognizer/modality_dropout.py). 0 = paper.
    modality_dropout: float = 0.0
    # Mixup's Beta(alpha, alpha) (recognizer/mixup.py): blends training samples and their labels; 0 = off.
    mixup: float = 0.0
    workers: int = 2  # DataLoader processes
    channels_last: bool | None = None  # NHWC activations; None = on for CUDA (tensor cores), off on CPU
    compile: bool = False  # torch.compile the model: faster steps on GPU after a compile of a minute or so
    train_sources: list[str] | None = None  # sources of the data config trained on (None = all)
    val_sources: list[str] | None = None  # sources validated on (None = all); ABAW scores Aff-Wild2
    log_every: int = 10  # steps between metrics.jsonl lines
    smoothing_windows: tuple[int, ...] = (1, 3, 5, 9, 15, 25)  # frames; chosen on validation
    max_steps_per_epoch: int | None = None  # cap (quick checks); None = the whole loader
    # Initial pre-training (paper, 2.2): start from the matching branches and heads of this recognizer
    # checkpoint (recognizer/init_from.py; `--init-from`); the parts loaded whole stay fixed this many epochs.
    init_from: str | None = None
    freeze_epochs: int = 0

    def __post_init__(self) -> None:
        if self.mixup < 0:
            raise ValueError(f"train.mixup must be >= 0 (0 = off), got {self.mixup}")
        if not 0.0 <= self.modality_dropout <= 1.0:
            raise ValueError(f"train.modality_dropout must be in [0, 1], got {self.modality_dropout}")
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "eval_batch_size": self.eval_batch_size,
            "log_every": self.log_every,
            "max_steps_per_epoch": self.max_steps_per_epoch,
        }
        for name, value in positive.items():
            if value is not None and value <= 0:
                raise ValueError(f"train.{name} must be positive, got {value}")
        if self.freeze_epochs < 0 or (self.freeze_epochs and not self.init_from):
            raise ValueError("train.freeze_epochs must be >= 0, and it freezes what train.init_from loaded")
        if self.workers < 0:
            raise ValueError(f"train.workers must be >= 0, got {self.workers}")
        if not self.smoothing_windows or any(w <= 0 for w in self.smoothing_windows):
            raise ValueError(
                f"train.smoothing_windows must be positive frame counts, got {self.smoothing_windows}"
            )


@dataclass
class RecognizerConfig:
    data: str = "configs/data/synthetic_tiny.yaml"  # data config (sources, preprocessing, cache)
    data_overrides: list[str] = field(default_factory=list)  # --set style overrides for the data config
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    extra_train: list[ExtraTrainData] = field(default_factory=list)  # filled by --with-synthetic etc.
    extra_policies: ExtraPolicies = field(default_factory=ExtraPolicies)


def load_recognizer_config(path, overrides=()) -> RecognizerConfig:
    """The config with an "auto" visual stem and audio stem pool resolved for the data's image size and
    log-mel, so that what is saved (config.yaml, checkpoints) names what the model was built with."""
    cfg = load_config(path, RecognizerConfig, overrides)
    model = cfg.model
    visual = model.use_video and model.visual.stem_stride == "auto"
    audio = model.use_audio and model.audio.stem_pool == "auto"
    if visual or audio:
        pre = load_data_config(resolve_path(cfg.data), cfg.data_overrides).preprocess
        model.visual = model.visual.for_image_size(pre.image_size) if visual else model.visual
        model.audio = model.audio.for_spectrogram(pre.n_mels, pre.hop_ms) if audio else model.audio
    return cfg


# Model keys that change what the network computes but not its tensor shapes, so that a checkpoint's weights
# would load into either value: a resume must keep them, and a stored config that predates one gets the only
# value the code had then (GCSA's gates were sigmoid * 1 in both branches before gcsa_start; "uniform" and
# "random" differ only at initialisation, "identity" doubles them).
SHAPE_FREE_KEYS = {
    ("audio", "stem_pool"): [1, 1],
    ("visual", "stem_stride"): 2,
    ("visual", "gcsa_start"): "uniform",
    ("audio", "gcsa_start"): "uniform",
}


def stored_recognizer_config(state: dict, source: str) -> RecognizerConfig:
    """The config stored in a recognizer checkpoint; one written before ``model.audio.stem_pool`` existed
    gets ``[1, 1]`` (the full-resolution input it was trained on), never the new "auto", and one written
    before ``gcsa_start`` gates of gain 1, never the new default's 2 (``SHAPE_FREE_KEYS``). A GAN's checkpoint
    is named as one (its config would otherwise fail on a key of the GAN's schema)."""
    if "G_ema" in state:
        raise CheckpointError(
            f"{source} is a GAN checkpoint (`gan-aug train`): give a `recognizer train` checkpoint (best.pt)"
        )
    stored = state.get(CONFIG_KEY)
    if isinstance(stored, dict) and isinstance(stored.get("model"), dict):
        model = dict(stored["model"])
        for (section, key), old in SHAPE_FREE_KEYS.items():
            if isinstance(model.get(section), dict) and key not in model[section]:
                model[section] = {**model[section], key: old}
        state = {**state, CONFIG_KEY: {**stored, "model": model}}
    return config_from_checkpoint(state, RecognizerConfig, source)


def check_same_stems(stored: RecognizerConfig, cfg: RecognizerConfig, source: str) -> None:
    """Refuse to resume with another visual stem stride, audio stem pool or GCSA start than the checkpoint
    was trained with: the weights would load (no shape changes) into a network that sees its input at
    another scale or gates it at another gain."""
    pairs = {
        f"model.{section}.{key}": (
            getattr(getattr(stored.model, section), key),
            getattr(getattr(cfg.model, section), key),
        )
        for section, key in SHAPE_FREE_KEYS
    }
    changed = [
        f"{key} {_show(a)} there, {_show(b)} here"
        for key, (a, b) in pairs.items()
        if _computed(key, a) != _computed(key, b)
    ]
    if changed:
        raise CheckpointError(
            f"{source} was trained with other input stems or gates ({'; '.join(changed)}); resume with its "
            "own config (the run's config.yaml) or start a new run"
        )


def _show(value) -> str:
    return str(list(value)) if isinstance(value, (list, tuple)) else str(value)


def _computed(key: str, value) -> str:
    """What a trained network computes with ``value``: GCSA's "uniform" and "random" starts differ only at
    initialisation (gain 1), "identity" doubles the gates."""
    if key.endswith(".gcsa_start"):
        return str(GCSA_GAINS[value])
    return _show(value)
