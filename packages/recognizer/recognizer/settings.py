"""The recognizer's experiment config (``configs/recognizer/*.yaml``): data, model, loss, optimisation and
training. Hardware (devices, precision) comes from ``accelerate`` flags, never from here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from expr_common.config import load_config
from recognizer.config import LossConfig, ModelConfig


@dataclass
class OptimConfig:
    lr: float = 1e-4  # paper: SGD at 1e-4 for the feature extractors
    head_lr: float = 1e-3  # paper: 1e-3 for the branch (classifier) weights
    momentum: float = 0.9  # paper
    weight_decay: float = 5e-4  # ours: the usual SGD value for small CNNs; the paper does not say
    nesterov: bool = False
    schedule: Literal["constant", "cosine", "step"] = "constant"  # the paper uses a constant rate
    warmup_epochs: int = 0  # linear warm-up from 0; helps large batches, off for the paper setup
    step_epochs: int = 100  # "step": multiply by step_gamma every this many epochs
    step_gamma: float = 0.1
    grad_clip: float = 5.0  # max global grad norm; 0 = off. Guards the first epochs of fresh BN stats

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.head_lr <= 0:
            raise ValueError("optim.lr and optim.head_lr must be positive")


@dataclass
class ExtraTrainData:
    """More training data from another data config (its own cache), e.g. GAN output or the source
    datasets. Used for training only, never for validation or test."""

    data: str  # path of a data config YAML
    overrides: list[str] = field(default_factory=list)  # --set style overrides for that data config
    sources: list[str] | None = None  # which of its sources (None = all)
    weight: float = 1.0  # loss weight of its samples relative to the main training data


@dataclass
class TrainConfig:
    epochs: int = 300  # paper
    batch_size: int = 16  # paper
    eval_batch_size: int = 64
    seed: int = 0
    deterministic: bool = False  # deterministic kernels: bit-exact resume on CPU, slower on GPU
    balanced: bool = False  # class-balanced sampling of the training windows (rare classes decide F1)
    workers: int = 2  # DataLoader processes
    train_sources: list[str] | None = None  # sources of the data config trained on (None = all)
    val_sources: list[str] | None = None  # sources validated on (None = all); ABAW scores Aff-Wild2
    log_every: int = 10  # steps between metrics.jsonl lines
    smoothing_windows: tuple[int, ...] = (1, 3, 5, 9, 15, 25)  # frames; chosen on validation
    max_steps_per_epoch: int | None = None  # cap (quick checks); None = the whole loader


@dataclass
class RecognizerConfig:
    data: str = "configs/data/synthetic_tiny.yaml"  # data config (sources, preprocessing, cache)
    data_overrides: list[str] = field(default_factory=list)  # --set style overrides for the data config
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    extra_train: list[ExtraTrainData] = field(default_factory=list)  # filled by --with-synthetic etc.


def load_recognizer_config(path, overrides=()) -> RecognizerConfig:
    return load_config(path, RecognizerConfig, overrides)
