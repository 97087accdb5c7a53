"""Typed config of a GAN training run (``configs/gan_aug/*.yaml``): which data, which model, which loop.

Hardware (devices, processes, mixed precision) is not here: it comes from ``accelerate launch`` flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expr_common.checkpoint import CONFIG_KEY, config_from_checkpoint
from expr_common.config import load_config
from gan_aug.config import DOMAINS, GanModelConfig


@dataclass
class TrainLoopConfig:
    steps: int = 20_000  # G steps; 640 k real images at batch 32, where small-data BigGAN runs level off
    batch_size: int = 32  # per process; DiffAugment's small-data BigGAN runs use 32-50
    lr_g: float = 2e-4  # DiffAugment-BigGAN's small-data setting (BigGAN's ImageNet TTUR is 1e-4 / 4e-4)
    lr_d: float = 2e-4  # equal rates: with d_steps > 1 D already moves faster than G
    betas: tuple[float, float] = (0.0, 0.999)  # BigGAN: no momentum, so D tracks a moving G closely
    adam_eps: float = 1e-6  # BigGAN's: keeps Adam's denominator clear of fp16 underflow
    d_steps: int = 2  # D steps per G step, each on a fresh real batch (BigGAN at 128 px uses 2)
    seed: int = 0  # weights, latents, augmentation and batches all derive from it
    # CPU runs are deterministic anyway; on GPU nearest-upsampling's backward has no deterministic kernel.
    deterministic: bool = False
    log_every: int = 10  # metrics.jsonl / TensorBoard every 10 G steps: one host sync, small files
    sample_every: int = 1000  # sample grids: frequent enough to watch progress, rare enough to be cheap
    grid_columns: int = 8  # fixed latents per class row of a grid
    checkpoint_every: int = 1000  # last.pt: at most this many steps are lost to a crash
    fid_every: int = 0  # off by default: FID/KID needs the Inception weights (`gan-aug fid-weights`)
    # FID needs N >= 2048 (docs/method.md, "FID conventions"); KID is reported beside it at any N
    fid_samples: int = 2048
    max_nonfinite: int = 20  # skipped non-finite steps before the run stops: a few are fp16 noise, many a bug
    workers: int = 2  # DataLoader processes that read and resize frames; 0 reads in the training process
    channels_last: bool | None = None  # NHWC G and D; None = on for CUDA (cuDNN, tensor cores), off on CPU
    compile: bool = False  # torch.compile G and D (R1's D pass stays eager: compile has no double backward)

    def __post_init__(self) -> None:
        positive = {
            "steps": self.steps,
            "batch_size": self.batch_size,
            "d_steps": self.d_steps,
            "log_every": self.log_every,
            "sample_every": self.sample_every,
            "grid_columns": self.grid_columns,
            "checkpoint_every": self.checkpoint_every,
            "fid_samples": self.fid_samples,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"train.{name} must be positive, got {value}")
        if self.lr_g <= 0 or self.lr_d <= 0:
            raise ValueError("train.lr_g and train.lr_d must be positive")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"train.betas must be in [0, 1), got {self.betas}")
        if self.fid_every < 0 or self.max_nonfinite < 0 or self.workers < 0:
            raise ValueError("train.fid_every, train.max_nonfinite and train.workers must be >= 0")


@dataclass
class GanTrainConfig:
    data: str = "configs/data/synthetic_demo.yaml"  # data config YAML; repo-relative paths work from anywhere
    # `--set`-style overrides of that data config (e.g. "cache.root=/scratch/cache"): moves a cache without
    # another YAML, which tests use to keep theirs in a temporary folder.
    data_overrides: list[str] = field(default_factory=list)
    model: GanModelConfig = field(default_factory=GanModelConfig)
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)
    # The style `generate` draws by default, `--fill-to-max` balances against and the FID hook measures.
    target_domain: str = "affwild2"


def load_train_config(path: str | Path | None, overrides: Sequence[str] = ()) -> GanTrainConfig:
    """A :class:`GanTrainConfig` from YAML plus ``--set`` overrides (unknown keys fail, naming the file)."""
    return load_config(path, GanTrainConfig, overrides)


def stored_config(state: dict[str, Any], checkpoint: str | Path) -> GanTrainConfig:
    """The training config stored in a GAN checkpoint. One written before domain tables were stored gives
    ``model.num_domains`` instead: the default table, cut to that many."""
    stored = state.get(CONFIG_KEY)
    model = stored.get("model") if isinstance(stored, dict) else None
    if isinstance(model, dict) and "num_domains" in model and "domains" not in model:
        model = {k: v for k, v in model.items() if k != "num_domains"} | {
            "domains": list(DOMAINS[: model["num_domains"]])
        }
        state = {**state, CONFIG_KEY: {**stored, "model": model}}
    return config_from_checkpoint(state, GanTrainConfig, str(checkpoint))
