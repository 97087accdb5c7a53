"""Training through Accelerate: SGD with the paper's two learning rates, the coarse-fine loss on the fused
and per-branch probabilities, per-epoch validation on the ABAW per-frame metric, atomic checkpoints,
``--resume``, and the fusion/smoothing selection on validation at the end.

The same function runs on CPU, one GPU, or many processes (``accelerate launch -m recognizer train``):
metrics are gathered across processes and only the main process writes files.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration
from torch.utils.data import Dataset

from expr_common.checkpoint import load_checkpoint, load_resume_checkpoint, save_checkpoint
from expr_common.config import save_config, to_dict
from expr_common.data.config import DataConfig, load_data_config
from expr_common.data.dataset import CachedClips, make_loader, normalize_video
from expr_common.data.prepare import prepare_cached
from expr_common.logs import get_logger, progress
from expr_common.metrics import plot_confusion
from expr_common.runs import MetricsWriter, RunDir, resolve_path
from expr_common.seeding import rng_state, seed_everything, set_rng_state
from recognizer.evaluation import (
    frames_from_windows,
    plot_grid,
    predict_windows,
    score,
    select_fusion_and_smoothing,
)
from recognizer.extra_data import TrainingMix, extra_data_config, extra_summary, select_extra
from recognizer.losses import build_loss, recognizer_loss
from recognizer.modality_dropout import drop_modalities
from recognizer.model import AudioVisualRecognizer
from recognizer.settings import OptimConfig, RecognizerConfig, TrainConfig

log = get_logger("recognizer")
TRACKER = "recognizer"
EXTRA_DATA_FILE = "extra_data.json"  # what each extra training set added, per class


@dataclass
class DataBundle:
    data_config: DataConfig
    cache: Path
    train: Dataset  # the main training split, or a TrainingMix of it and the admitted extra samples
    val: CachedClips
    extras: list[dict[str, Any]] = field(default_factory=list)  # per extra set: what the policy admitted


def load_data(cfg: RecognizerConfig, accelerator: Accelerator | None) -> DataBundle:
    """Prepare (or reuse) the caches and open the training and validation splits; extra training data
    joins under its per-class policy (recognizer/extra_data.py)."""
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
    if len(train) == 0:
        raise ValueError(f"no labelled training windows in {cache} for sources {cfg.train.train_sources}")
    if len(val) == 0:
        raise ValueError(f"no validation windows in {cache} for sources {cfg.train.val_sources}")
    parts, summaries = [], []
    for k, extra in enumerate(cfg.extra_train):
        extra_cfg = extra_data_config(extra, data_cfg)
        extra_cache = Path(prepare_cached(extra_cfg, accelerator).path)
        extra_set = CachedClips(
            extra_cache,
            split="train",
            source=extra.sources,
            labelled_only=True,
            train=True,
            augment=data_cfg.augment,
        )
        rows, table = select_extra(train.class_counts(), extra_set.labels, extra, cfg.train.seed + 7919 * k)
        parts.append((extra_set, rows, extra.weight))
        summaries.append(extra_summary(extra.name, extra_cache, table, extra))
        log.info("extra training data %r: %d of %d samples admitted", extra.name, len(rows), len(extra_set))
    # Without extra data the cache's batched fast path is kept; with it, every sample carries its weight.
    train_set = TrainingMix(train, parts) if parts else train
    return DataBundle(data_cfg, cache, train_set, val, summaries)


def build_model(cfg: RecognizerConfig) -> AudioVisualRecognizer:
    return AudioVisualRecognizer(cfg.model)


def build_optimizer(model: torch.nn.Module, optim: OptimConfig) -> torch.optim.Optimizer:
    """SGD (or AdamW) with two parameter groups: classifier heads at ``head_lr``, everything else at ``lr``;
    no weight decay on norms and biases."""
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
    if optim.name == "adamw":
        return torch.optim.AdamW(param_groups)
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
    # Batches come from pinned memory on CUDA (see make_loader): their copy to the GPU need not block.
    loading = DataLoaderConfiguration(non_blocking=True)
    accelerator = Accelerator(
        cpu=cpu, log_with="tensorboard", project_config=project, dataloader_config=loading
    )
    check_launch(accelerator)
    if accelerator.num_processes > 1:
        atexit.register(_leave_process_group)
    return accelerator


def _leave_process_group() -> None:
    """At exit: a process that ends with its gloo group alive can abort in the group's teardown ("terminate
    called without an active exception"), as non-main processes of ``recognizer evaluate`` do, which
    finish while the main one still writes its files. ``end_training`` (train) has done this already."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def check_launch(accelerator: Accelerator) -> None:
    """Log what accelerate runs on; refuse a launch whose processes do not form one group (e.g. ``accelerate
    launch --multi_gpu`` or ``torchrun`` on a machine without GPUs and without ``ACCELERATE_USE_CPU=true``):
    each process would train alone and all of them would write the same run directory."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > accelerator.num_processes:  # a ValueError: the CLI prints it as one line
        raise ValueError(
            f"{world} processes were launched (WORLD_SIZE) but accelerate sees {accelerator.num_processes} "
            f"({accelerator.distributed_type}): on CPUs set ACCELERATE_USE_CPU=true, see "
            "configs/accelerate/cpu_2proc.yaml"
        )
    if accelerator.is_main_process:
        log.info(
            "accelerate: %d process(es), %s (%s), device %s, mixed precision %s",
            accelerator.num_processes,
            accelerator.distributed_type,
            accelerator.state.backend or "no backend",
            accelerator.device,
            accelerator.mixed_precision,
        )


def prepare_for_device(
    model: torch.nn.Module, train_cfg: TrainConfig, device: torch.device
) -> torch.nn.Module:
    """``channels_last`` (``train.channels_last``; unset = on for CUDA, where cuDNN's NHWC convolutions and
    bf16/fp16 tensor cores are fastest) and ``torch.compile`` (``train.compile``). Both keep parameter
    names, so checkpoints stay interchangeable with eager, NCHW runs. Call before the optimizer exists
    (``.to`` may replace parameter tensors) and before ``accelerator.prepare``."""
    channels_last = train_cfg.channels_last if train_cfg.channels_last is not None else device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # 4-D weights; 1-D/2-D ones are unaffected
    if train_cfg.compile:
        # In place: the module (and its state_dict keys) stay the same. Static shapes: a branch sees as many
        # samples as have its modality, and torch 2.11's inductor fails on that batch made symbolic
        # ("cannot determine truth value of Relational"); a few static graphs per batch size work.
        model.compile(dynamic=False)
    return model


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
        if data.extras:
            (run.root / EXTRA_DATA_FILE).write_text(json.dumps(data.extras, indent=2) + "\n")
    model = prepare_for_device(build_model(cfg), cfg.train, accelerator.device)
    optimizer = build_optimizer(model, cfg.optim)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    loss_fn = build_loss(cfg.loss)
    start_epoch, step, best_f1, history = 0, 0, -1.0, []
    if resume:
        # Skips a killed write's temp file; falls back to last.prev.pt if last.pt is unreadable (both logged).
        state, source = load_resume_checkpoint(run.last_checkpoint, tidy=main)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, step, best_f1 = state["epoch"] + 1, state["step"], state["best_f1"]
        set_rng_state(state["rng"])
        if main:  # lines logged after that checkpoint (a kill, or a fallback) are logged again: drop them
            _drop_metrics_after(run.metrics, state["epoch"])
        log.info("resumed from %s at epoch %d", source, start_epoch)
    model, optimizer = accelerator.prepare(model, optimizer)
    loss_fn = loss_fn.to(accelerator.device)
    pin = accelerator.device.type == "cuda"
    val_loader = accelerator.prepare(
        make_loader(
            data.val,
            cfg.train.eval_batch_size,
            workers=cfg.train.workers,
            seed=cfg.train.seed,
            pin_memory=pin,
        )
    )
    accelerator.init_trackers(TRACKER, config={"run": str(run.root)})
    metrics = MetricsWriter(run.metrics, enabled=main)

    for epoch in range(start_epoch, cfg.train.epochs):
        factor = lr_factor(epoch, cfg.optim, cfg.train.epochs)
        for group, base in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base * factor
        loader = accelerator.prepare(_train_loader(cfg, data, epoch, pin_memory=pin))
        started, seen, losses, skipped = time.perf_counter(), 0, [], 0
        model.train()
        bar = progress(loader, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", unit="batch", enabled=main)
        for i, batch in enumerate(bar):
            if cfg.train.max_steps_per_epoch is not None and i >= cfg.train.max_steps_per_epoch:
                break
            has_audio, has_video = drop_modalities(
                batch["has_audio"], batch["has_video"], cfg.train.modality_dropout
            )
            with accelerator.autocast():
                out = model(normalize_video(batch["video"]), batch["audio"], has_video, has_audio)
                parts = recognizer_loss(
                    loss_fn,
                    out,
                    batch["label"],
                    has_audio,
                    has_video,
                    cfg.loss.aux_weight,
                    batch.get("weight"),
                )
            # A non-finite loss would poison the weights: skip the step and count it, on every process
            # together (one replica skipping alone would leave the others waiting in DDP's all-reduce).
            finite = torch.isfinite(parts["loss"].detach()).reshape(1).float()
            if float(accelerator.reduce(finite, "sum")) < accelerator.num_processes:
                skipped += 1
                optimizer.zero_grad(set_to_none=True)
                continue
            loss = parts["loss"]
            if accelerator.num_processes > 1:
                # A branch runs only on the samples that have its modality (model.py): a batch of video-only
                # clips (GAN, CK+), or one where modality dropout hid the same modality everywhere, leaves
                # that branch out of this process's graph, and DDP would wait for its gradients forever or
                # fail. A zero-weighted term gives every parameter a (zero) gradient here; the other
                # processes' gradients still arrive through the all-reduce. One process keeps grad None.
                loss = loss + 0.0 * sum(p.sum() for p in model.parameters() if p.requires_grad)
            accelerator.backward(loss)
            if cfg.optim.grad_clip > 0:
                accelerator.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            seen += len(batch["label"]) * accelerator.num_processes
            losses.append(float(parts["loss"].detach()))
            if step % cfg.train.log_every == 0:  # means over all processes' batches: one all-reduce
                names = list(parts)
                values = accelerator.reduce(torch.stack([parts[k].detach().float() for k in names]), "mean")
                record = {k: round(v, 6) for k, v in zip(names, values.tolist())}
                record.update(lr=optimizer.param_groups[0]["lr"], epoch=epoch)
                metrics.write(step=step, **record)
                accelerator.log({f"train/{k}": v for k, v in record.items()}, step=step)
        train_s = time.perf_counter() - started
        # Every process ran as many steps: the mean of the per-process means is the mean over all batches.
        train_loss = torch.tensor([sum(losses) / max(1, len(losses))], device=accelerator.device)
        train_loss = float(accelerator.reduce(train_loss, "mean"))
        preds = predict_windows(model, val_loader, accelerator)
        record: dict[str, Any] = {
            "epoch": epoch,
            "step": step,
            "train_loss": round(train_loss, 6),
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


def _train_loader(cfg: RecognizerConfig, data: DataBundle, epoch: int, pin_memory: bool = False):
    # A fresh, epoch-seeded loader: the order of epoch e is the same whether or not the run was resumed.
    # Its workers must not persist: accelerate keeps a reference to every prepared loader, so persistent
    # workers of past epochs would pile up (a 40-epoch demo run was killed for memory at epoch 24).
    return make_loader(
        data.train,
        cfg.train.batch_size,
        workers=cfg.train.workers,
        shuffle=True,
        balanced=cfg.train.balanced,
        seed=cfg.train.seed * 1000 + epoch,
        drop_last=len(data.train) > cfg.train.batch_size,
        persistent_workers=False,
        pin_memory=pin_memory,
    )


def _drop_metrics_after(path: Path, epoch: int) -> None:
    """Keep the metrics.jsonl lines up to ``epoch`` (every line carries its epoch); rewritten atomically."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("epoch", -1) <= epoch]
    if len(kept) < len(lines):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
        tmp.replace(path)


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
        selection["val_metrics"] = selected  # per-class F1, accuracy, confusion after the selection
        (run.root / "selection.json").write_text(json.dumps(selection, indent=2) + "\n", encoding="utf-8")
        plot_confusion(
            np.asarray(selected["confusion"]),
            run.root / "confusion_val.png",
            title=f"Validation, best checkpoint (macro-F1 {selected['macro_f1']:.3f})",
        )
        if selection["grid"] is not None:
            plot_grid(selection["grid"], run.root / "fusion_grid.png")
        if run.best_checkpoint.is_file():
            state["selection"] = selection
            save_checkpoint(run.best_checkpoint, state)
        summary["selection"] = selection
        summary["data_config"] = to_dict(data.data_config)
    accelerator.wait_for_everyone()
    return summary
