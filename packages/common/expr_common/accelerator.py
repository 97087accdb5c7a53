"""The Accelerator both trainers run on, its launch check, and the one device default.

Hardware (devices, processes, precision) comes from ``accelerate launch`` flags and configs, never from an
experiment YAML; this module turns them into one ``Accelerator`` whose TensorBoard events go to the run
folder's ``tb/``, and refuses a launch whose processes do not form one group.
"""

from __future__ import annotations

import atexit
import gc
import os
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, broadcast_object_list

from expr_common.config import ConfigError
from expr_common.errors import RunDirError
from expr_common.logs import get_logger
from expr_common.runs import TENSORBOARD_DIR, RunDir, default_run_dir, open_run_dir

log = get_logger("accelerate")


def default_device(name: str | torch.device | None = None) -> torch.device:
    """``name`` as a device (``--device``); by default the GPU when there is one, else the CPU. A name
    that is no device, or a GPU the machine lacks, is a :class:`ConfigError`."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"--device {name!r} is not a device (cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and (
        not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()
    ):
        raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def make_accelerator(run_dir: str | Path, cpu: bool = False) -> Accelerator:
    """An Accelerator for a run in ``run_dir`` (TensorBoard under ``run_dir/tb``: :func:`start_tracking`),
    launch-checked."""
    project = ProjectConfiguration(project_dir=str(run_dir))  # trackers log under the project folder
    # Batches come from pinned memory on CUDA (see make_loader): their copy to the GPU need not block.
    loading = DataLoaderConfiguration(non_blocking=True)
    accelerator = Accelerator(
        cpu=cpu, log_with="tensorboard", project_config=project, dataloader_config=loading
    )
    check_launch(accelerator)
    if accelerator.num_processes > 1:
        atexit.register(leave_process_group)
    return accelerator


def agree_on_run_dir(
    accelerator: Accelerator,
    path: str | Path | None,
    command: str,
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> RunDir:
    """The run folder every process of a launch uses: ``path``, or the main process's timestamped default.
    Only the main process looks into it (refusing a folder that holds a run, moving it aside with
    ``overwrite``: :func:`~expr_common.runs.open_run_dir`); the others learn its verdict, so a refusal stops
    every process with the same one line instead of leaving some waiting."""
    chosen = Path(path) if path is not None else (None if resume else default_run_dir(command))
    chosen_text = broadcast_object_list([None if chosen is None else str(chosen)])[0]
    verdict: list[Any] = [None]
    failure: Exception | None = None
    if accelerator.is_main_process:
        try:
            open_run_dir(chosen_text, command, resume=resume, overwrite=overwrite)
        except Exception as exc:  # whatever stops the main process stops them all, with its message
            failure, verdict = exc, [str(exc)]
    verdict = broadcast_object_list(verdict)
    if failure is not None:
        raise failure
    if verdict[0] is not None:
        raise RunDirError(f"the main process could not use the run folder: {verdict[0]}")
    return RunDir(Path(chosen_text))


def start_tracking(accelerator: Accelerator, config: dict[str, Any] | None = None) -> None:
    """TensorBoard events of a run in ``<project_dir>/tb`` (the run contract's ``tb/``)."""
    accelerator.init_trackers(TENSORBOARD_DIR, config=config)


def end_run(accelerator: Accelerator) -> None:
    """End a training run's processes in order. The caller drops its own references to the prepared
    (DDP-wrapped) models first; then accelerate's go and are collected, every process meets once more, and
    only then is the process group destroyed. A DDP reducer freed after the group was destroyed, with the
    other process already gone, hung in gloo's destructor (joining its worker threads) in a few runs in
    ten: the intermittent "hang after training" of the two-process tests."""
    accelerator.free_memory()
    gc.collect()
    accelerator.wait_for_everyone()
    accelerator.end_training()


def leave_process_group() -> None:
    """At exit: a process that ends with its gloo group alive can abort in the group's teardown ("terminate
    called without an active exception"), as non-main processes of ``recognizer evaluate`` do, which
    finish while the main one still writes its files. ``end_training`` (train) has done this already."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def check_launch(accelerator: Accelerator) -> None:
    """Log what accelerate runs on; refuse a launch whose processes do not form one group (e.g. ``accelerate
    launch --multi_gpu`` or ``torchrun`` on a machine without GPUs and without ``ACCELERATE_USE_CPU=true``):
    each process would train alone and all of them would write the same run directory."""
    if getattr(accelerator, "_expr_launch_checked", False):
        return
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > accelerator.num_processes:
        raise ConfigError(
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
    accelerator._expr_launch_checked = True
