"""Initial pre-training (the paper, section 2.2: "except for the initial pre-training, no auxiliary data
is required"): ``recognizer train --init-from CKPT`` starts a run from the branches and heads of an earlier
recognizer checkpoint, say one trained on a large labelled face or speech set, and fine-tunes them on the
target data; ``train.freeze_epochs: N`` keeps the loaded parts fixed for the first N epochs.

Every tensor whose name and shape match is loaded; the rest keep their fresh initialisation. The table
of what was loaded, per part (``visual``, ``head_v``, ``audio``, ``head_a``), is logged and written to
``init_from.json``. A part is "loaded" (and frozen) only when all its tensors came from the checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from expr_common.checkpoint import load_checkpoint
from expr_common.errors import ExprError
from expr_common.logs import get_logger

log = get_logger("recognizer")
INIT_FROM_FILE = "init_from.json"


class InitFromError(ExprError, ValueError):
    """The --init-from checkpoint cannot start this model (not a recognizer checkpoint, nothing fits)."""


def load_matching(model: torch.nn.Module, checkpoint: str | Path) -> dict[str, Any]:
    """Copy into ``model`` every tensor of ``checkpoint``'s model with the same name and shape; returns the
    table: per part, tensors loaded / skipped (and why), and which parts were loaded whole."""
    state = load_checkpoint(checkpoint)
    saved = state.get("model")
    if not isinstance(saved, dict):
        raise InitFromError(
            f"{checkpoint} holds no recognizer model (is it a `recognizer train` checkpoint?)"
        )
    own = model.state_dict()
    parts: dict[str, dict[str, Any]] = {}
    chosen = {}
    for name, tensor in own.items():
        part = parts.setdefault(name.split(".", 1)[0], {"loaded": 0, "skipped": 0, "why": {}})
        if name not in saved:
            reason = "not in the checkpoint"
        elif tuple(saved[name].shape) != tuple(tensor.shape):
            reason = f"shape {tuple(saved[name].shape)} there, {tuple(tensor.shape)} here"
        else:
            chosen[name] = saved[name]
            part["loaded"] += 1
            continue
        part["skipped"] += 1
        part["why"].setdefault(reason, 0)
        part["why"][reason] += 1
    if not chosen:
        raise InitFromError(f"{checkpoint}: no tensor fits this model (another architecture or modality)")
    model.load_state_dict({**own, **chosen})
    whole = [name for name, part in parts.items() if part["skipped"] == 0 and part["loaded"] > 0]
    for name, part in parts.items():
        why = "; ".join(f"{n} {reason}" for reason, n in part["why"].items())
        log.info(
            "--init-from %s: %-7s %3d tensors loaded, %3d skipped%s",
            checkpoint, name, part["loaded"], part["skipped"], f" ({why})" if why else "",
        )  # fmt: skip
    return {"checkpoint": str(checkpoint), "parts": parts, "loaded_parts": whole}


def drop_frozen_grads(model: torch.nn.Module, parts: list[str]) -> None:
    """After backward, before the optimiser step: no gradient for the frozen parts, so neither the step nor
    weight decay nor momentum moves them (their gradients were still all-reduced, so DDP stays in step)."""
    for name, param in model.named_parameters():
        if name.split(".", 1)[0] in parts:
            param.grad = None


def hold_frozen_norms(model: torch.nn.Module, parts: list[str]) -> None:
    """The frozen parts in eval mode for the epoch: their batch-norm statistics stay as loaded."""
    for name, module in model.named_children():
        if name in parts:
            module.eval()
