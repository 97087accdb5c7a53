"""The GAN's training loop (``gan-aug train``'s work; :mod:`gan_aug.train` is its command line): the run
folder, the data, the trainer of the config's kind (:class:`~gan_aug.trainer.GanTrainer` or
:class:`~gan_aug.edit_trainer.EditTrainer`), resume, logging, sample grids, the FID hook and checkpoints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn

from expr_common.accelerator import agree_on_run_dir, check_launch, end_run, make_accelerator, start_tracking
from expr_common.checkpoint import check_fits, load_resume_checkpoint, save_checkpoint
from expr_common.config import save_config
from expr_common.data.config import load_data_config
from expr_common.data.prepare import prepare_cached
from expr_common.logs import get_logger, progress
from expr_common.paths import resolve_path
from expr_common.runs import (
    MetricsWriter,
    RunDir,
    truncate_metrics,
)
from expr_common.seeding import rng_state, seed_everything, set_rng_state
from gan_aug.edit_trainer import EditTrainer
from gan_aug.grids import save_real_grids
from gan_aug.run_config import GanTrainConfig, stored_config
from gan_aug.sampling import (
    STREAM_NOISE,
    CellSampler,
    FrameBatches,
    batch_loader,
    build_frame_table,
    step_generator,
)
from gan_aug.trainer import GanTrainer, reduce_stats

COMMAND = "gan-aug-train"
log = get_logger("gan")
# Called every train.fid_every steps on the main process with (G_ema, step); returns metrics, lower = better.
FidHook = Callable[[nn.Module, int], dict[str, float]]


@dataclass
class TrainResult:
    run: RunDir
    steps: int
    last_metrics: dict[str, Any] = field(default_factory=dict)
    grids: list[Path] = field(default_factory=list)
    best: dict[str, Any] | None = None


def training_step(trainer: GanTrainer, loader: Any, config: GanTrainConfig) -> dict[str, torch.Tensor] | None:
    """One step: ``d_steps`` D phases, one G phase, one EMA update; None when a phase was not finite."""
    loop = config.train
    noise = step_generator(loop.seed, trainer.step, trainer.accelerator.process_index, STREAM_NOISE)
    batches = [next(loader) for _ in range(loop.d_steps)]  # all drawn, skipped or not: streams stay aligned
    stats: dict[str, torch.Tensor] = {}
    for batch in batches:  # D phase
        d_stats = trainer.d_phase(batch, noise)
        if d_stats is None:
            return None
        stats.update(d_stats)
    g_stats = trainer.g_phase(loop.batch_size, noise, batches[-1])  # G phase
    if g_stats is None:
        return None
    trainer.ema_phase(loop.batch_size)  # EMA of G
    return {**stats, **g_stats}


def metrics_record(
    trainer: GanTrainer, stats: dict[str, float] | None, images_per_s: float
) -> dict[str, Any]:
    values = {n: (stats or {}).get(n) for n in trainer.METRICS}
    return {
        "step": trainer.step,
        "kimg": trainer.images_seen / 1000.0,
        **{n: v if v is None or math.isfinite(v) else None for n, v in values.items()},
        "r1": trainer.last_r1,
        "ada_p": trainer.augment.p,
        "ada_rt": trainer.augment.last_rt,
        "images_per_s": round(images_per_s, 2),
        "skipped_nonfinite": trainer.skipped_nonfinite,
    }


def _checkpoint(trainer: GanTrainer, path: Path, config: GanTrainConfig, extra: dict[str, Any]) -> None:
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        save_checkpoint(path, {**trainer.state_dict(), "rng": rng_state(), **extra}, config)


def trainer_class(config: GanTrainConfig) -> type[GanTrainer]:
    """The one place the GAN's kind picks its trainer (its metrics, grids and phases come with it)."""
    return EditTrainer if config.model.kind == "edit" else GanTrainer


@dataclass
class Session:
    """A run opened for training: its folder, config (with the data's domain table), trainer, frame table,
    what a checkpoint carries besides the trainer, and on --resume the saved RNG and best score."""

    out: RunDir
    config: GanTrainConfig
    trainer: GanTrainer
    table: Any
    cache: Path
    extra: dict[str, Any]
    saved_rng: Any = None
    best: dict[str, Any] | None = None


def open_session(
    config: GanTrainConfig, run_dir: str | Path, resume: bool, acc: Accelerator, overwrite: bool
) -> Session:
    """The run folder, seeds, cache, domain table and trainer; with ``resume`` the state of ``last.pt``."""
    main, loop = acc.is_main_process, config.train
    out = agree_on_run_dir(acc, run_dir, COMMAND, resume=resume, overwrite=overwrite)
    seed_everything(loop.seed, loop.deterministic)
    data_config = load_data_config(resolve_path(config.data), config.data_overrides)
    cache = prepare_cached(data_config, acc)  # main process first; the others then reuse the cache
    if resume:
        # Skips a killed write's temp file; falls back to last.prev.pt if last.pt is unreadable (both logged).
        state, source = load_resume_checkpoint(out.last_checkpoint, tidy=main)
        known = stored_config(state, source).model.domains  # a resumed GAN keeps its domain table
    table = build_frame_table(cache.path, config.model.num_classes, known if resume else None)
    # The GAN embeds the domains of its data (stored with the config in every checkpoint).
    config = replace(config, model=replace(config.model, domains=list(table.domains)))
    cells = int((table.cell_counts() > 0).sum())
    log.info("GAN training on %d frames in %d (class, domain) cells; domains %s", len(table), cells,
             ", ".join(table.domains))  # fmt: skip
    extra = {"real_frame_counts": table.cell_counts(), "real_clip_counts": table.clip_counts()}
    session = Session(out, config, trainer_class(config)(config, acc, CellSampler(table)), table,
                      Path(cache.path), extra)  # fmt: skip
    if resume:
        check_fits(source, state, session.trainer.model_states(), config)  # before anything is loaded
        session.trainer.load_state_dict(state)
        session.saved_rng = state["rng"]  # restored once the loader has started (it draws a seed)
        session.best = state.get("best")
        log.info("resumed %s from %s at step %d", out.root, source, session.trainer.step)
    if main:
        save_config(config, out.config)
        if resume:
            truncate_metrics(out.metrics, "step", session.trainer.step)
        else:
            save_real_grids(table, config.model.generator.resolution, loop.grid_columns, out.root)
    return session


def _batches(session: Session, acc: Accelerator) -> Any:
    """The real batches from the trainer's step on (pinned on CUDA: d_phase copies them non-blocking)."""
    loop, trainer = session.config.train, session.trainer
    batches = FrameBatches(session.table, loop.batch_size, session.config.model.generator.resolution,
                           loop.seed, acc.process_index, start=trainer.step * loop.d_steps)  # fmt: skip
    loader = batch_loader(batches, loop.workers)
    # A DataLoader reads pin_memory when it starts iterating; batch_loader's signature stays device-free.
    loader.pin_memory = acc.device.type == "cuda"
    return iter(loader)


def train(
    config: GanTrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    accelerator: Accelerator | None = None,
    fid_hook: FidHook | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train (or, with ``resume``, continue) a GAN run in ``run_dir``; returns where things were written."""
    acc = accelerator or make_accelerator(run_dir)
    check_launch(acc)  # once per accelerator
    session = open_session(config, run_dir, resume, acc, overwrite)
    config, trainer, loop = session.config, session.trainer, session.config.train
    if not resume:
        trainer.before_training(session.table)
    if fid_hook is None and loop.fid_every > 0 and acc.is_main_process:  # only the main process evaluates
        from gan_aug.fid.hook import default_fid_hook  # Inception only when FID is asked for

        fid_hook = default_fid_hook(config, session.cache, acc)
    start_tracking(acc)
    metrics = MetricsWriter(session.out.metrics, enabled=acc.is_main_process)
    grid_inputs = trainer.grid_inputs(session.table)
    loader = _batches(session, acc)
    if resume:
        set_rng_state(session.saved_rng)  # as the uninterrupted run's RNG stood at this step
    result = TrainResult(session.out, trainer.step, best=session.best)
    busy_s, busy_images = 0.0, 0
    bar = progress(total=loop.steps, desc="gan train", unit="step", enabled=acc.is_main_process)
    bar.update(trainer.step)
    while trainer.step < loop.steps:
        started = time.perf_counter()
        stats = training_step(trainer, loader, config)
        trainer.step += 1
        if stats is None:
            log.warning("step %d: non-finite loss or logits; step skipped", trainer.step)
            trainer.skip(trainer.step, loop.max_nonfinite)
        busy_s += time.perf_counter() - started
        busy_images += loop.batch_size * loop.d_steps * acc.num_processes
        bar.update()
        if trainer.step % loop.log_every == 0 or trainer.step == loop.steps:
            _log_step(result, trainer, stats, busy_images / max(busy_s, 1e-9), metrics)
            busy_s, busy_images = 0.0, 0
        _after_step(session, result, grid_inputs, fid_hook, metrics)
    bar.close()
    result.steps, result.best = trainer.step, session.best
    session.trainer = trainer = loader = None  # the DDP-wrapped G and D go before the process group
    end_run(acc)
    return result


def _log_step(result: TrainResult, trainer: GanTrainer, stats, images_per_s: float, metrics) -> None:
    """The step's losses (means over processes), throughput and augmentation state, to the log and TB."""
    reduced = reduce_stats(trainer.accelerator, stats) if stats is not None else None
    result.last_metrics = metrics_record(trainer, reduced, images_per_s)
    metrics.write(**result.last_metrics)
    values = {k: v for k, v in result.last_metrics.items() if isinstance(v, (int, float))}
    trainer.accelerator.log(values, step=trainer.step)


def _after_step(session: Session, result: TrainResult, grid_inputs, fid_hook, metrics) -> None:
    """Sample grids, FID (best.pt when it improved) and last.pt, each at its interval and at the end."""
    trainer, config, out = session.trainer, session.config, session.out
    loop, step, main = config.train, session.trainer.step, trainer.accelerator.is_main_process
    last = step == loop.steps
    if main and (step % loop.sample_every == 0 or last):
        result.grids = trainer.save_grids(grid_inputs, out.root, step)
    if fid_hook is not None and loop.fid_every > 0 and (step % loop.fid_every == 0 or last):
        scores = fid_hook(trainer.generator_ema, step) if main else {}
        metrics.write(step=step, **scores)
        score = next(iter(scores.values()), None)  # the hook lists its selection metric first
        if main and score is not None and (session.best is None or score < session.best["score"]):
            session.best = {"step": step, "score": score, **scores}
            state = {**trainer.state_dict(), "best": session.best, **session.extra}
            save_checkpoint(out.best_checkpoint, state, config)
    if step % loop.checkpoint_every == 0 or last:
        _checkpoint(trainer, out.last_checkpoint, config, {**session.extra, "best": session.best})
