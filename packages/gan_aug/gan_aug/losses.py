"""GAN objectives: hinge loss, LeCam regulariser, lazy R1 penalty.

Pure functions of D's logits (and, for R1, of the images they came from), plus one small stateful class for
LeCam's anchors. Which phase calls which term, and how often, is the training loop's business.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's hinge loss: E[max(0, 1 - D(real))] + E[max(0, 1 + D(fake))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """G's hinge loss: -E[D(fake)] (unbounded, unlike D's, so G keeps a gradient where D is sure)."""
    return -fake_logits.mean()


class LeCam:
    """LeCam regulariser (Tseng et al., CVPR 2021) with EMA anchors of D's mean real and fake outputs.

    R = E[relu(D(real) - a_fake)^2] + E[relu(a_real - D(fake))^2]: it pulls real outputs down towards the fake
    anchor and fake outputs up towards the real one, which bounds how far apart D can push the two on a small
    training set. Under data parallelism, feed it logits gathered across processes so every replica holds the
    same anchors.
    """

    def __init__(self, decay: float = 0.99, start_step: int = 0) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"LeCam decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.start_step = start_step
        self.anchor_real = 0.0
        self.anchor_fake = 0.0
        self.steps = 0

    def update(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> None:
        """Move the anchors towards this batch's means; before ``start_step`` they just equal them."""
        decay = self.decay if self.steps >= self.start_step and self.steps > 0 else 0.0
        real_mean = float(real_logits.detach().float().mean())
        fake_mean = float(fake_logits.detach().float().mean())
        self.anchor_real = decay * self.anchor_real + (1.0 - decay) * real_mean
        self.anchor_fake = decay * self.anchor_fake + (1.0 - decay) * fake_mean
        self.steps += 1

    def penalty(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """The regulariser against the current anchors (no update)."""
        return (
            F.relu(real_logits - self.anchor_fake).square().mean()
            + F.relu(self.anchor_real - fake_logits).square().mean()
        )

    def __call__(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """Update the anchors with this batch, then return the penalty (the LeCam-GAN code's order)."""
        self.update(real_logits, fake_logits)
        return self.penalty(real_logits, fake_logits)

    def state_dict(self) -> dict[str, Any]:
        # Plain floats and ints: safe for torch.load(weights_only=True).
        return {
            "anchor_real": self.anchor_real,
            "anchor_fake": self.anchor_fake,
            "steps": self.steps,
            "decay": self.decay,
            "start_step": self.start_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.anchor_real = float(state["anchor_real"])
        self.anchor_fake = float(state["anchor_fake"])
        self.steps = int(state["steps"])
        self.decay = float(state.get("decay", self.decay))
        self.start_step = int(state.get("start_step", self.start_step))


def r1_penalty(real_images: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """E[||grad_x D(x)||^2] over real images; ``real_images`` must require grad and have produced the logits.

    The graph is kept (``create_graph``) so that the penalty can be back-propagated into D's weights.
    """
    if not real_images.requires_grad:
        raise ValueError("r1_penalty needs real_images.requires_grad_(True) before they go through D")
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True, allow_unused=True)
    if grad is None:  # D ignored its input entirely: its gradient is zero, not an error
        return real_logits.new_zeros(())
    return grad.square().flatten(start_dim=1).sum(dim=1).mean()


def r1_due(step: int, gamma: float, interval: int) -> bool:
    """Whether lazy R1 runs at this D step (StyleGAN2: every ``interval`` steps, when gamma > 0)."""
    return gamma > 0 and step % interval == 0


def lazy_r1_loss(
    real_images: torch.Tensor, real_logits: torch.Tensor, gamma: float, interval: int
) -> torch.Tensor:
    """R1 term to add on the steps where ``r1_due``: gamma / 2 * penalty, times ``interval`` because it runs
    once per ``interval`` steps and should weigh as much as it would if it ran every step."""
    return r1_penalty(real_images, real_logits) * (gamma / 2.0) * interval
