"""Weight EMA (``optim.ema_decay``): an exponential moving average of the weights and BatchNorm statistics,
updated after every optimiser step (torch's ``AveragedModel``). With it on, validation, ``best.pt`` and every
checkpoint's ``model`` hold the averaged weights (what inference loads); the raw weights the optimiser moves
are kept under ``train_model`` for ``--resume`` only."""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from expr_common.config import ConfigError

RAW_WEIGHTS = "train_model"  # a checkpoint's raw (optimised) weights when the EMA is on
EMA_STEPS = "ema_steps"


def build_ema(
    model: torch.nn.Module, decay: float, device: torch.device | None = None
) -> AveragedModel | None:
    """The averaged copy of ``model`` (unwrapped) on ``device`` (where training runs: the model itself may
    still be on the CPU, before ``accelerator.prepare``), or None when ``decay`` is 0."""
    if decay <= 0:
        return None
    return AveragedModel(model, device=device, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def eval_model(model: torch.nn.Module, ema: AveragedModel | None) -> torch.nn.Module:
    """The weights to validate and keep: the average when there is one."""
    return model if ema is None else ema.module


def ema_checkpoint(raw: dict[str, torch.Tensor], ema: AveragedModel | None) -> dict[str, Any]:
    """The checkpoint's weight entries: ``model`` is what inference loads."""
    if ema is None:
        return {"model": raw}
    return {"model": ema.module.state_dict(), RAW_WEIGHTS: raw, EMA_STEPS: int(ema.n_averaged)}


def resume_weights(
    model: torch.nn.Module, ema: AveragedModel | None, state: dict[str, Any], source: str
) -> None:
    """Load a ``last.pt`` written by :func:`ema_checkpoint` into the training model and its average."""
    if (RAW_WEIGHTS in state) != (ema is not None):
        raise ConfigError(
            f"{source}: written with optim.ema_decay {'on' if RAW_WEIGHTS in state else 'off'}; "
            "resume with the same setting"
        )
    model.load_state_dict(state[RAW_WEIGHTS] if ema is not None else state["model"])
    if ema is not None:
        ema.module.load_state_dict(state["model"])
        ema.n_averaged.fill_(state[EMA_STEPS])
