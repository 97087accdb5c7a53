"""The recognizer's optimiser and learning-rate schedule: the paper's two learning rates (feature extractors
and classifier heads), SGD by default, AdamW as an option."""

from __future__ import annotations

import math

import torch

from recognizer.run_config import OptimConfig


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
