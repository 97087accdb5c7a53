"""Training through Accelerate: SGD with the paper's two learning rates, the coarse-fine loss on the fused
and per-branch probabilities, per-epoch validation on the ABAW per-frame metric, atomic checkpoints,
``--resume``, and the fusion/smoothing selection on validation at the end.

The same function runs on CPU, one GPU, or many processes (``accelerate launch -m recognizer train``):
metrics are gathered across processes and only the main process writes files.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration
from torch.utils.data import ConcatDataset, Dataset

from expr_common.checkpoint import load_checkpoint, save_checkpoint
from expr_common.config import save_config, to_dict
from expr_common.data.config import DataConfig, load_data_config
from expr_common.data.dataset import CachedClips, make_loader, normalize_video
from expr_common.data.prepare import prepare_cached
from expr_common.logs import get_logger, progress
from expr_common.runs import MetricsWriter, RunDir, resolve_path
from expr_common.seeding import rng_state, seed_everything, set_rng_state
from recognizer.evaluation import frames_from_windows, predict_windows, score, select_fusion_and_smoothing
from recognizer.losses import build_loss, recognizer_loss
from recognizer.model import AudioVisualRecognizer
from recognizer.settings import OptimConfig, RecognizerConfig

log = get_logger("recognizer")
TRACKER = "recognizer"


class Weighted(Dataset):
    """A dataset whose samples carry a loss weight (extra training data weighs ``weight`` per sample)."""

    def __init__(self, dataset: Dataset, weight: float):
        self.dataset, self.weight = dataset, float(weight)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {**self.dataset[i], "weight": torch.tensor(self.weight)}


@dataclass
class DataBundle:
    data_config: DataConfig
    cache: Path
    train: Dataset
    val: CachedClips
    balanced_view: CachedClips  # the main training split, for the class-balanced sampler


def load_data(cfg: RecognizerConfig, accelerator: Accelerator | None) -> DataBundle:
    """Prepare (or reuse) the caches and open the training and validation splits."""
    data_cfg = load_data_config(resolve_path(cfg.data), cfg.data_overrides)
    cache = Path(prepare_cached(data_cfg, accelerator).path)
    train = CachedClips(
        cache,
        split="train",
        source=cfg.train.train_sources,
        labelled_only=True,
        train=True,
        augment=data_cfg.augment,
    )
    val = CachedClips(cache, split="val", source=cfg.train.val_sources)
    parts: list[Dataset] = []
    for extra in cfg.extra_train:
        extra_cfg = load_data_config(resolve_path(extra.data), extra.overrides)
        extra_cache = Path(prepare_cached(extra_cfg, accelerator).path)
        extra_set = CachedClips(
            extra_cache,
            split="train",
            source=extra.sources,
            labelled_only=True,
            train=True,
            augment=extra_cfg.augment,
        )
        parts.append(Weighted(extra_set, extra.weight))
    if len(train) == 0:
        raise ValueError(f"no labelled training windows in {cache} for sources {cfg.train.train_sources}")
    if len(val) == 0:
        raise ValueError(f"no validation windows in {cache} for sources {cfg.train.val_sources}")
    # Without extra data the cache's batched fast path is kept; with it, every sample carries its weight.
    train_set = ConcatDataset([Weighted(train, 1.0), *parts]) if parts else train
    return DataBundle(data_cfg, cache, train_set, val, train)


def build_model(cfg: RecognizerConfig) -> AudioVisualRecognizer:
    return AudioVisualRecognizer(cfg.model)


def build_optimizer(model: torch.nn.Module, optim: OptimConfig) -> torch.optim.Optimizer:
    """SGD with two parameter groups: classifier heads at ``head_lr``, everything else at ``lr``; no weight
    decay on norms and biases."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_head = name.startswith(("head_v.", "head_a."))
        decay = param.ndim > 1
        groups.setdefault((is_head, decay), []).append(param)
    param_groups = [
        {
            "params": params,
            "lr": optim.head_lr if head else optim.lr,
            "weight_decay": optim.weight_decay if decay else 0.0,
        }
        for (head, decay), params in sorted(groups.items())
    ]
    return torch.optim.SGD(param_groups, momentum=optim.momentum, nesterov=optim.nesterov)


def lr_factor(epoch: int, optim: OptimConfig, epochs: int) -> float:
    """Multiplier of the base learning rates at ``epoch`` (0-based)."""
    if optim.warmup_epochs and epoch < optim.warmup_epochs:
        return (epoch + 1) / (optim.warmup_epochs + 1)
    if optim.schedule == "cosine":
        span = max(1, epochs - optim.warmup_epochs)
        return 0.5 * (1 + math.cos(math.pi * (epoch - optim.warmup_epochs) / span))
    if optim.schedule == "step":
        return optim.step_gamma ** (epoch // max(1, optim.step_epochs))
    return 1.0


def make_accelerator(run: RunDir, cpu: bool = False) -> Accelerator:
    project = ProjectConfiguration(project_dir=str(run.root), logging_dir=str(run.tensorboard))
    return Accelerator(cpu=cpu, log_with="tensorboard", project_config=project)


def train(
    cfg: RecognizerConfig, run: RunDir, *, resume: bool = False, accelerator: Accelerator | None = None
) -> dict[str, Any]:
    """Train, validate every epoch, keep ``last.pt`` and ``best.pt``; returns the final summary."""
    accelerator = accelerator or make_accelerator(run)
    main = accelerator.is_main_process
    seed_everything(cfg.train.seed, deterministic=cfg.train.deterministic)
    data = load_data(cfg, accelerator)
    if main:
        save_config(cfg, run.config)
        save_config(data.data_config, run.root / "data_config.yaml")
    model = build_model(cfg)
    optimizer = build_optimizer(model, cfg.optim)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    loss_fn = build_loss(cfg.loss)
    start_epoch, step, best_f1, history = 0, 0, -1.0, []
    if resume:
        state = load_checkpoint(run.last_checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, step, best_f1 = state["epoch"] + 1, state["step"], state["best_f1"]
        set_rng_state(state["rng"])
        log.info("resumed from %s at epoch %d", run.last_checkpoint, start_epoch)
    model, optimizer = accelerator.prepare(model, optimizer)
    loss_fn = loss_fn.to(accelerator.device)
    val_loader = accelerator.prepare(
        make_loader(data.val, cfg.train.eval_batch_size, workers=cfg.train.workers, seed=cfg.train.seed)
    )
    accelerator.init_trackers(TRACKER, config={"run": str(run.root)})
    metrics = MetricsWriter(run.metrics, enabled=main)

    for epoch in range(start_epoch, cfg.train.epochs):
        factor = lr_factor(epoch, cfg.optim, cfg.train.epochs)
        for group, base in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base * factor
        loader = accelerator.prepare(_train_loader(cfg, data, epoch))
        started, seen, losses, skipped = time.perf_counter(), 0, [], 0
        model.train()
        bar = progress(loader, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", unit="batch", enabled=main)
        for i, batch in enumerate(bar):
            if cfg.train.max_steps_per_epoch is not None and i >= cfg.train.max_steps_per_epoch:
                break
            with accelerator.autocast():
                out = model(
                    normalize_video(batch["video"]), batch["audio"], batch["has_video"], batch["has_audio"]
                )
                parts = recognizer_loss(
                    loss_fn,
                    out,
                    batch["label"],
                    batch["has_audio"],
                    batch["has_video"],
                    cfg.loss.aux_weight,
                    batch.get("weight"),
                )
            if not torch.isfinite(parts["loss"]):
                skipped += 1  # a non-finite loss would poison the weights: skip the step, count it
                optimizer.zero_grad(set_to_none=True)
                continue
            accelerator.backward(parts["loss"])
            if cfg.optim.grad_clip > 0:
                accelerator.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            seen += len(batch["label"]) * accelerator.num_processes
            losses.append(float(parts["loss"].detach()))
            if step % cfg.train.log_every == 0:
                record = {k: round(float(v.detach()), 6) for k, v in parts.items()}
                record.update(lr=optimizer.param_groups[0]["lr"], epoch=epoch)
                metrics.write(step=step, **record)
                accelerator.log({f"train/{k}": v for k, v in record.items()}, step=step)
        train_s = time.perf_counter() - started
        preds = predict_windows(model, val_loader, accelerator)
        record: dict[str, Any] = {
            "epoch": epoch,
            "step": step,
            "train_loss": round(sum(losses) / max(1, len(losses)), 6),
            "train_clips_per_s": round(seen / max(train_s, 1e-9), 2),
            "skipped_nonfinite": skipped,
        }
        if main:
            table = frames_from_windows(data.val, preds)
            val = score(table)
            record.update(val_macro_f1=round(val["macro_f1"], 6), val_accuracy=round(val["accuracy"], 6))
            metrics.write(**record)
            accelerator.log(
                {
                    "val/macro_f1": val["macro_f1"],
                    "val/accuracy": val["accuracy"],
                    "train/epoch_loss": record["train_loss"],
                },
                step=step,
            )
            history.append(record)
            state = _state(accelerator, model, optimizer, epoch, step, max(best_f1, val["macro_f1"]))
            if val["macro_f1"] > best_f1:
                best_f1 = val["macro_f1"]
                save_checkpoint(run.best_checkpoint, state, cfg)
            save_checkpoint(run.last_checkpoint, state, cfg)
            log.info(
                "epoch %d: loss %.4f, val macro-F1 %.4f (best %.4f)",
                epoch + 1,
                record["train_loss"],
                val["macro_f1"],
                best_f1,
            )
        accelerator.wait_for_everyone()

    summary = finish(cfg, run, data, model, val_loader, accelerator)
    summary.update(best_val_macro_f1=best_f1, epochs=cfg.train.epochs, history=history)
    accelerator.end_training()
    return summary


def _train_loader(cfg: RecognizerConfig, data: DataBundle, epoch: int):
    # A fresh, epoch-seeded loader: the order of epoch e is the same whether or not the run was resumed.
    # Its workers must not persist: accelerate keeps a reference to every prepared loader, so persistent
    # workers of past epochs would pile up (a 40-epoch demo run was killed for memory at epoch 24).
    balanced = cfg.train.balanced and data.train is data.balanced_view
    return make_loader(
        data.train,
        cfg.train.batch_size,
        workers=cfg.train.workers,
        shuffle=True,
        balanced=balanced,
        seed=cfg.train.seed * 1000 + epoch,
        drop_last=len(data.train) > cfg.train.batch_size,
        persistent_workers=False,
    )


def _state(accelerator, model, optimizer, epoch: int, step: int, best_f1: float) -> dict[str, Any]:
    return {
        "model": accelerator.unwrap_model(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "step": step,
        "best_f1": best_f1,
        "rng": rng_state(),
    }


def finish(
    cfg: RecognizerConfig, run: RunDir, data: DataBundle, model, val_loader, accelerator
) -> dict[str, Any]:
    """With the best checkpoint's weights: choose (m, n) and the smoothing window on validation, store the
    choice in ``best.pt`` and ``selection.json``."""
    summary: dict[str, Any] = {}
    if run.best_checkpoint.is_file():
        state = load_checkpoint(run.best_checkpoint)
        accelerator.unwrap_model(model).load_state_dict(state["model"])
    preds = predict_windows(model, val_loader, accelerator)
    if accelerator.is_main_process:
        table = frames_from_windows(data.val, preds)
        selection = select_fusion_and_smoothing(table, cfg.train.smoothing_windows)
        selected = score(table, selection["m"], selection["n"], selection["window"])
        selection["val_macro_f1"] = selected["macro_f1"]
        (run.root / "selection.json").write_text(json.dumps(selection, indent=2) + "\n", encoding="utf-8")
        if run.best_checkpoint.is_file():
            state["selection"] = selection
            save_checkpoint(run.best_checkpoint, state)
        summary["selection"] = selection
        summary["data_config"] = to_dict(data.data_config)
    accelerator.wait_for_everyone()
    return summary
