"""Training through Accelerate: SGD with the paper's two learning rates, the coarse-fine loss on the fused
and per-branch probabilities, per-epoch validation on the ABAW per-frame metric, atomic checkpoints,
``--resume``, and the fusion/smoothing selection on validation at the end.

The loop reads as its steps: :func:`train_step` (one batch), :func:`train_epoch`, :func:`validate`,
:func:`save_epoch` (checkpoints), then :func:`finish` (the selection). The same function runs on CPU, one
GPU, or many processes (``accelerate launch -m recognizer train``): metrics are gathered across processes
and only the main process writes files.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import Dataset

from expr_common.accelerator import end_run, make_accelerator, start_tracking
from expr_common.atomic import write_json
from expr_common.checkpoint import check_fits, load_checkpoint, load_resume_checkpoint, save_checkpoint
from expr_common.config import save_config, to_dict
from expr_common.data.config import DataConfig, load_data_config
from expr_common.data.dataset import CachedClips, make_loader, normalize_video
from expr_common.data.prepare import prepare_cached
from expr_common.errors import DataError
from expr_common.logs import get_logger, progress
from expr_common.metrics import plot_confusion
from expr_common.paths import resolve_path
from expr_common.runs import MetricsWriter, RunDir, read_metrics, truncate_metrics
from expr_common.seeding import rng_state, seed_everything, set_rng_state
from recognizer.ema import build_ema, ema_checkpoint, eval_model, resume_weights
from recognizer.evaluation import (
    frames_from_windows,
    plot_grid,
    predict_windows,
    score,
    select_fusion_and_smoothing,
)
from recognizer.extra_data import TrainingMix, open_extra
from recognizer.init_from import INIT_FROM_FILE, drop_frozen_grads, hold_frozen_norms, load_matching
from recognizer.losses import build_loss, recognizer_loss, with_every_parameter
from recognizer.mixup import mix_batch, mixup_loss
from recognizer.modality_dropout import drop_modalities
from recognizer.model import AudioVisualRecognizer
from recognizer.optim import build_optimizer, lr_factor
from recognizer.outputs import (
    CONFUSION_FILE,
    DATA_CONFIG_FILE,
    EXTRA_DATA_FILE,
    FUSION_GRID_FILE,
    SELECTION_FILE,
)
from recognizer.run_config import RecognizerConfig, TrainConfig, check_same_stems, stored_recognizer_config
from recognizer.run_report import write_run_report

log = get_logger("recognizer")


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
        raise DataError(f"no labelled training windows in {cache} for sources {cfg.train.train_sources}")
    if len(val) == 0:
        raise DataError(f"no validation windows in {cache} for sources {cfg.train.val_sources}")
    parts = [
        open_extra(extra, data_cfg, train.class_counts(), cfg.train.seed + 7919 * k, accelerator)
        for k, extra in enumerate(cfg.extra_train)
    ]
    for part in parts:
        log.info(
            "extra training data %r: %d of %d samples admitted",
            part.summary["name"],
            len(part.rows),
            len(part.dataset),
        )
    # Without extra data the cache's batched fast path is kept; with it, every sample carries its weight.
    train_set = TrainingMix(train, [(p.dataset, p.rows, p.weight) for p in parts]) if parts else train
    return DataBundle(data_cfg, cache, train_set, val, [p.summary for p in parts])


def build_model(cfg: RecognizerConfig) -> AudioVisualRecognizer:
    return AudioVisualRecognizer(cfg.model)


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


@dataclass
class Loop:
    """What every step of a training run needs: the config, the run folder, the data and the prepared
    model, optimiser and loss."""

    cfg: RecognizerConfig
    run: RunDir
    data: DataBundle
    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: torch.nn.Module
    base_lrs: list[float]
    val_loader: Any
    metrics: MetricsWriter
    epoch: int = 0  # the next epoch to train
    step: int = 0
    frozen: list[str] = field(default_factory=list)  # parts kept fixed for train.freeze_epochs epochs
    freeze_now: bool = False
    best_f1: float = -1.0
    ema: Any = None  # recognizer/ema.py's AveragedModel with optim.ema_decay, else None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process


def setup(cfg: RecognizerConfig, run: RunDir, resume: bool, accelerator: Accelerator) -> Loop:
    """Seed, data, model, optimiser, loss; the saved configs; with ``resume`` the state of ``last.pt``."""
    main = accelerator.is_main_process
    seed_everything(cfg.train.seed, deterministic=cfg.train.deterministic)
    data = load_data(cfg, accelerator)
    model = prepare_for_device(build_model(cfg), cfg.train, accelerator.device)
    optimizer = build_optimizer(model, cfg.optim)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    epoch, step, best_f1 = 0, 0, -1.0
    init_from = cfg.train.init_from and not resume
    init_table = load_matching(model, resolve_path(cfg.train.init_from)) if init_from else None
    frozen = init_table["loaded_parts"] if init_table else []
    ema = build_ema(model, cfg.optim.ema_decay, accelerator.device)
    if resume:
        # Skips a killed write's temp file; falls back to last.prev.pt if last.pt is unreadable (both logged).
        state, source = load_resume_checkpoint(run.last_checkpoint, tidy=main)
        check_fits(source, state, {"model": model.state_dict()}, cfg)  # before anything is written
        check_same_stems(stored_recognizer_config(state, str(source)), cfg, str(source))
        resume_weights(model, ema, state, str(source))
        optimizer.load_state_dict(state["optimizer"])
        epoch, step, best_f1 = state["epoch"] + 1, state["step"], state["best_f1"]
        set_rng_state(state["rng"])
        if main:  # lines logged after that checkpoint (a kill, or a fallback) are logged again: drop them
            truncate_metrics(run.metrics, "epoch", state["epoch"])
        log.info("resumed from %s at epoch %d", source, epoch)
        if cfg.train.freeze_epochs and (run.root / INIT_FROM_FILE).is_file():
            frozen = json.loads((run.root / INIT_FROM_FILE).read_text(encoding="utf-8"))["loaded_parts"]
    if main:  # only once a resumed checkpoint is known to fit: a refused one leaves config.yaml as it was
        save_config(cfg, run.config)
        save_config(data.data_config, run.root / DATA_CONFIG_FILE)
        if data.extras:
            write_json(run.root / EXTRA_DATA_FILE, data.extras)
        if init_table is not None:
            write_json(run.root / INIT_FROM_FILE, init_table)
    model, optimizer = accelerator.prepare(model, optimizer)
    val = make_loader(
        data.val,
        cfg.train.eval_batch_size,
        workers=cfg.train.workers,
        seed=cfg.train.seed,
        pin_memory=accelerator.device.type == "cuda",
    )
    start_tracking(accelerator, {"run": str(run.root)})
    loss_fn = build_loss(cfg.loss).to(accelerator.device)
    metrics = MetricsWriter(run.metrics, enabled=main)
    return Loop(
        cfg, run, data, accelerator, model, optimizer, loss_fn, base_lrs, accelerator.prepare(val), metrics,
        epoch=epoch, step=step, best_f1=best_f1, ema=ema, frozen=frozen if cfg.train.freeze_epochs else [],
    )  # fmt: skip


def train(
    cfg: RecognizerConfig, run: RunDir, *, resume: bool = False, accelerator: Accelerator | None = None
) -> dict[str, Any]:
    """Train, validate every epoch, keep ``last.pt`` and ``best.pt``; returns the final summary."""
    accelerator = accelerator or make_accelerator(run.root)
    loop = setup(cfg, run, resume, accelerator)
    for epoch in range(loop.epoch, cfg.train.epochs):
        record = train_epoch(loop, epoch)
        val_f1 = validate(loop, record)
        if loop.main:
            save_epoch(loop, epoch, val_f1)
        accelerator.wait_for_everyone()
    summary = finish(cfg, run, loop.data, loop.model, loop.val_loader, accelerator)
    summary.update(best_val_macro_f1=loop.best_f1, epochs=cfg.train.epochs, history=loop.history)
    if "selection" in summary:  # the main process
        history = [r for r in read_metrics(run.metrics) if "val_macro_f1" in r]  # a resumed run's too
        write_run_report(run, summary["selection"], history)
    loop.model = loop.optimizer = loop.val_loader = None  # the DDP model goes before the process group
    end_run(accelerator)
    return summary


def train_step(loop: Loop, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """Forward, loss, backward and the optimiser step on one batch; None when the loss was not finite on
    some process (the step is then skipped on every process together, before any weight moves: one replica
    skipping alone would leave the others waiting in DDP's all-reduce)."""
    acc, cfg, model = loop.accelerator, loop.cfg, loop.model
    has_audio, has_video = drop_modalities(batch["has_audio"], batch["has_video"], cfg.train.modality_dropout)
    with acc.autocast():
        parts = forward_and_loss(loop, batch, has_audio, has_video)
    finite = torch.isfinite(parts["loss"].detach()).reshape(1).float()
    if float(acc.reduce(finite, "sum")) < acc.num_processes:
        loop.optimizer.zero_grad(set_to_none=True)
        return None
    acc.backward(with_every_parameter(parts["loss"], model, acc.num_processes))
    if loop.freeze_now:
        drop_frozen_grads(acc.unwrap_model(model), loop.frozen)
    if cfg.optim.grad_clip > 0:
        acc.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
    loop.optimizer.step()
    loop.optimizer.zero_grad(set_to_none=True)
    if loop.ema is not None:
        loop.ema.update_parameters(acc.unwrap_model(model))
    return parts


def forward_and_loss(loop: Loop, batch: dict, has_audio: torch.Tensor, has_video: torch.Tensor) -> dict:
    """The model on a training batch and its loss parts; with ``train.mixup`` the batch is blended with a
    shuffled copy of itself and the loss with it (recognizer/mixup.py)."""
    cfg, video, audio, label = loop.cfg, normalize_video(batch["video"]), batch["audio"], batch["label"]
    weight = batch.get("weight")
    if cfg.train.mixup <= 0:
        out = loop.model(video, audio, has_video, has_audio)
        return recognizer_loss(loop.loss_fn, out, label, has_audio, has_video, cfg.loss.aux_weight, weight)
    video, audio, partner, lam = mix_batch(video, audio, has_video, has_audio, cfg.train.mixup)
    out = loop.model(video, audio, has_video, has_audio)
    return mixup_loss(
        loop.loss_fn, out, label, partner, lam, has_audio, has_video, cfg.loss.aux_weight, weight
    )


def train_epoch(loop: Loop, epoch: int) -> dict[str, Any]:
    """One epoch at its learning rate: every batch through :func:`train_step`, step metrics every
    ``log_every`` steps; returns the epoch's record (loss, throughput, skipped steps)."""
    acc, cfg = loop.accelerator, loop.cfg
    factor = lr_factor(epoch, cfg.optim, cfg.train.epochs)
    for group, base in zip(loop.optimizer.param_groups, loop.base_lrs):
        group["lr"] = base * factor
    loader = acc.prepare(_train_loader(cfg, loop.data, epoch, pin_memory=acc.device.type == "cuda"))
    started, seen, losses, skipped = time.perf_counter(), 0, [], 0
    loop.model.train()
    loop.freeze_now = bool(loop.frozen) and epoch < cfg.train.freeze_epochs
    if loop.freeze_now:
        hold_frozen_norms(acc.unwrap_model(loop.model), loop.frozen)
    bar = progress(loader, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", unit="batch", enabled=loop.main)
    for i, batch in enumerate(bar):
        if cfg.train.max_steps_per_epoch is not None and i >= cfg.train.max_steps_per_epoch:
            break
        parts = train_step(loop, batch)
        if parts is None:
            skipped += 1
            continue
        loop.step += 1
        seen += len(batch["label"]) * acc.num_processes
        losses.append(float(parts["loss"].detach()))
        if loop.step % cfg.train.log_every == 0:  # means over all processes' batches: one all-reduce
            names = list(parts)
            values = acc.reduce(torch.stack([parts[k].detach().float() for k in names]), "mean")
            record = {k: round(v, 6) for k, v in zip(names, values.tolist())}
            record.update(lr=loop.optimizer.param_groups[0]["lr"], epoch=epoch)
            loop.metrics.write(step=loop.step, **record)
            acc.log({f"train/{k}": v for k, v in record.items()}, step=loop.step)
    train_s = time.perf_counter() - started
    # Every process ran as many steps: the mean of the per-process means is the mean over all batches.
    train_loss = torch.tensor([sum(losses) / max(1, len(losses))], device=acc.device)
    return {
        "epoch": epoch,
        "step": loop.step,
        "train_loss": round(float(acc.reduce(train_loss, "mean")), 6),
        "train_clips_per_s": round(seen / max(train_s, 1e-9), 2),
        "skipped_nonfinite": skipped,
    }


def validate(loop: Loop, record: dict[str, Any]) -> float | None:
    """Per-frame validation macro-F1 of the current weights, logged with the epoch's ``record``; None on
    non-main processes (they only contribute their share of the predictions)."""
    preds = predict_windows(eval_model(loop.model, loop.ema), loop.val_loader, loop.accelerator)
    if not loop.main:
        return None
    val = score(frames_from_windows(loop.data.val, preds))
    record.update(val_macro_f1=round(val["macro_f1"], 6), val_accuracy=round(val["accuracy"], 6))
    loop.metrics.write(**record)
    logged = {"val/macro_f1": val["macro_f1"], "val/accuracy": val["accuracy"]}
    loop.accelerator.log({**logged, "train/epoch_loss": record["train_loss"]}, step=loop.step)
    loop.history.append(record)
    return val["macro_f1"]


def save_epoch(loop: Loop, epoch: int, val_f1: float) -> None:
    """``last.pt`` after every epoch, ``best.pt`` when validation improved (main process only)."""
    state = {
        **ema_checkpoint(loop.accelerator.unwrap_model(loop.model).state_dict(), loop.ema),
        "optimizer": loop.optimizer.state_dict(),
        "epoch": epoch,
        "step": loop.step,
        "best_f1": max(loop.best_f1, val_f1),
        "rng": rng_state(),
        "preprocess": to_dict(loop.data.data_config.preprocess),  # how to read a new recording (predict)
    }
    if val_f1 > loop.best_f1:
        loop.best_f1 = val_f1
        save_checkpoint(loop.run.best_checkpoint, state, loop.cfg)
    save_checkpoint(loop.run.last_checkpoint, state, loop.cfg)
    log.info(
        "epoch %d: loss %.4f, val macro-F1 %.4f (best %.4f)",
        epoch + 1, loop.history[-1]["train_loss"], val_f1, loop.best_f1,
    )  # fmt: skip


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
        write_json(run.root / SELECTION_FILE, selection)
        plot_confusion(
            np.asarray(selected["confusion"]),
            run.root / CONFUSION_FILE,
            title=f"Validation, best checkpoint (macro-F1 {selected['macro_f1']:.3f})",
        )
        if selection["grid"] is not None:
            plot_grid(selection["grid"], run.root / FUSION_GRID_FILE)
        if run.best_checkpoint.is_file():
            state["selection"] = selection
            save_checkpoint(run.best_checkpoint, state)
        summary["selection"] = selection
        summary["data_config"] = to_dict(data.data_config)
    accelerator.wait_for_everyone()
    return summary
