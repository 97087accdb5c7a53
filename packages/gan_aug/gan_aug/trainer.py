"""The GAN's training state and its phases (stylegan2-ada's split: networks / loss / augment live in their own
modules; this file owns one D step, one G step and the EMA step, and what a checkpoint must hold).

One training step = ``d_steps`` D phases (each on a fresh real batch) + one G phase + one EMA update. A phase
whose loss or logits are not finite is skipped before any state moves, and the step is counted as skipped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn
from torch.nn import functional as F

from expr_common.errors import ExprError
from gan_aug.augment import AdaptiveAugment
from gan_aug.ema import GeneratorEma
from gan_aug.grids import fixed_latents, save_sample_grids
from gan_aug.losses import LeCam, d_hinge_loss, g_hinge_loss, lazy_r1_loss, r1_due
from gan_aug.networks import Generator, build_networks
from gan_aug.run_config import GanTrainConfig
from gan_aug.sampling import CellSampler, FrameTable

Stats = dict[str, torch.Tensor]


class NonFiniteError(ExprError, RuntimeError):
    """Too many steps had a non-finite loss: the run stops instead of training on garbage."""


class FidUnavailableError(ExprError, RuntimeError):
    """train.fid_every is set but FID cannot run (no Inception weights): said at start-up, not mid-run."""


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` without gradients for the duration (D during the G phase: no wasted weight gradients)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


class GanTrainer:
    """G, D, G_ema, both optimizers (prepared by Accelerate), augmentation and LeCam state, and counters."""

    # What each kind of GAN logs, what its sample grids start from and how they are drawn: the trainer
    # class answers for its kind (stylegan2-ada picks its classes from the config the same way).
    METRICS: tuple[str, ...] = (
        "d_loss", "g_loss", "lecam", "d_class", "g_class", "real_logit_mean", "fake_logit_mean",
    )  # fmt: skip

    def __init__(self, config: GanTrainConfig, accelerator: Accelerator, sampler: CellSampler) -> None:
        self.config, self.accelerator, self.sampler = config, accelerator, sampler
        model, loop = config.model, config.train
        G, D = build_networks(model)
        # NHWC (train.channels_last; unset = CUDA only) before the EMA copy, so that G_ema's layout is G's.
        cuda = accelerator.device.type == "cuda"
        self.channels_last = loop.channels_last if loop.channels_last is not None else cuda
        if self.channels_last:
            G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        self.ema = GeneratorEma(G, model.ema)  # copied before prepare: the EMA is never wrapped or trained
        self.ema.module.to(accelerator.device)
        if loop.compile:  # in place, after the EMA copy (G_ema only draws grids); state_dict keys unchanged
            G.compile()
            D.compile()
        opt_g = torch.optim.Adam(G.parameters(), lr=loop.lr_g, betas=loop.betas, eps=loop.adam_eps)
        opt_d = torch.optim.Adam(D.parameters(), lr=loop.lr_d, betas=loop.betas, eps=loop.adam_eps)
        self.G, self.D, self.opt_g, self.opt_d = accelerator.prepare(G, D, opt_g, opt_d)
        self.augment = AdaptiveAugment(model.augment)
        self.lecam = LeCam(model.loss.lecam_decay, model.loss.lecam_start_step)
        self.step = 0  # G steps done (skipped ones included: their data and noise are used up)
        self.d_updates = 0  # D updates done: lazy R1's clock
        self.images_seen = 0  # real images D has seen, over all processes: the EMA's and ADA's clock
        self.skipped_nonfinite = 0
        self.last_r1: float | None = None  # R1 runs every r1_interval D steps; logs show its latest value

    def before_training(self, table: FrameTable) -> None:
        """Work a fresh run does once before its first step (the editing GAN fits its class teacher)."""

    def grid_inputs(self, table: FrameTable) -> Any:
        """The fixed latents every sample grid of the run draws from."""
        model, loop = self.config.model, self.config.train
        return fixed_latents(loop.seed, model.num_classes, loop.grid_columns, model.generator.z_dim)

    def save_grids(self, inputs: Any, run_root: Path, step: int) -> list[Path]:
        model = self.config.model
        return save_sample_grids(self.generator_ema, inputs, model.num_classes, run_root, step, model.domains)

    @property
    def generator_ema(self) -> Generator:
        return self.ema.module

    def latents(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z [n, z_dim] and fake (class, domain) drawn like the real batches' cells; drawn on the CPU so that
        a seed gives the same fakes on any device."""
        z = torch.randn(n, self.config.model.generator.z_dim, generator=generator)
        y, d = self.sampler.draw_cells(n, generator)
        device = self.accelerator.device
        return z.to(device), y.to(device), d.to(device)

    def all_finite(self, *tensors: torch.Tensor) -> bool:
        """True when every tensor is finite on every process (all replicas skip a step together)."""
        bad = torch.stack([~torch.isfinite(t.detach()).all() for t in tensors]).sum().float()
        return float(self.accelerator.reduce(bad, "sum")) == 0.0

    # --- D phase: real and fake through the same augmentation; hinge + LeCam (+ lazy R1) ----------------
    def d_phase(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> Stats | None:
        loss_cfg, acc = self.config.model.loss, self.accelerator
        keys = ("image", "label", "domain")
        real, y_real, d_real = (batch[k].to(acc.device, non_blocking=True) for k in keys)  # pinned on CUDA
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        B = real.shape[0]
        z, y_fake, d_fake = self.latents(B, generator)
        with torch.no_grad(), acc.autocast():
            fake = self.G(z, y_fake, d_fake)
        real_aug = self.augment(real, generator)
        fake_aug = self.augment(fake.float(), generator)
        with_r1 = r1_due(self.d_updates, loss_cfg.r1_gamma, loss_cfg.r1_interval)
        if with_r1:  # R1 is the gradient w.r.t. the images D saw, i.e. the augmented reals
            real_aug = real_aug.detach().requires_grad_(True)
        # torch.compile has no double backward: a D pass that R1 differentiates twice runs eagerly.
        eager = with_r1 and self.config.train.compile
        stance = torch.compiler.set_stance("force_eager") if eager else contextlib.nullcontext()
        # One D pass over real and fake: one spectral-norm update, one DDP reduction.
        with_class = loss_cfg.class_weight > 0
        with stance, acc.autocast():
            out = self.D(
                torch.cat([real_aug, fake_aug]),
                torch.cat([y_real, y_fake]),
                torch.cat([d_real, d_fake]),
                class_logits=with_class,
            )
        logits, class_logits = out if with_class else (out, None)
        real_logits, fake_logits = logits.float().split(B)  # [B] each
        hinge = d_hinge_loss(real_logits, fake_logits)
        if not self.all_finite(hinge, logits):
            return None
        loss, stats = hinge, {"d_loss": hinge.detach()}
        if class_logits is not None:  # D names the class of the reals only (AC-GAN)
            d_class = F.cross_entropy(class_logits[:B].float(), y_real)
            loss = loss + loss_cfg.class_weight * d_class
            stats["d_class"] = d_class.detach()
        return self.d_update(loss, stats, real_logits, fake_logits, real_aug if with_r1 else None)

    def d_update(
        self,
        loss: torch.Tensor,
        stats: Stats,
        real_logits: torch.Tensor,
        fake_logits: torch.Tensor,
        r1_images: torch.Tensor | None,
    ) -> Stats | None:
        """The D phase's shared end (both GAN kinds): LeCam and lazy R1 (on ``r1_images``, the augmented
        reals, when this step has R1) added to ``loss``, the finite check, the step and the counters."""
        loss_cfg, acc = self.config.model.loss, self.accelerator
        # Anchors and ADA follow logits gathered over processes, so every replica holds the same state.
        real_all, fake_all = acc.gather(real_logits.detach()), acc.gather(fake_logits.detach())
        if loss_cfg.lecam_weight > 0:
            self.lecam.update(real_all, fake_all)
            lecam = self.lecam.penalty(real_logits, fake_logits)
            loss = loss + loss_cfg.lecam_weight * lecam
            stats["lecam"] = lecam.detach()
        if r1_images is not None:
            r1 = lazy_r1_loss(r1_images, real_logits, loss_cfg.r1_gamma, loss_cfg.r1_interval)
            loss = loss + r1
            stats["r1"] = r1.detach()
        if not self.all_finite(loss):
            return None
        self.augment.observe(real_all)
        self.opt_d.zero_grad(set_to_none=True)
        acc.backward(loss)
        self.opt_d.step()
        self.d_updates += 1
        self.images_seen += real_all.numel()
        if "r1" in stats:
            self.last_r1 = float(stats["r1"])
        stats["real_logit_mean"], stats["fake_logit_mean"] = real_all.mean(), fake_all.mean()
        return stats

    # --- G phase: fakes through the same augmentation into a frozen D; hinge -----------------------------
    def g_phase(
        self, batch_size: int, generator: torch.Generator, batch: dict[str, torch.Tensor] | None = None
    ) -> Stats | None:
        """``batch``: the step's last real batch (the editing GAN edits it; fakes from noise need none)."""
        acc = self.accelerator
        z, y, d = self.latents(batch_size, generator)
        # The unwrapped D: under DDP its reducer would otherwise wait for D gradients that never come.
        with frozen(acc.unwrap_model(self.D)) as D, acc.autocast():
            fake = self.G(z, y, d)
            weight = self.config.model.loss.class_weight
            out = D(self.augment(fake, generator), y, d, class_logits=weight > 0)
            logits, class_logits = out if weight > 0 else (out, None)
            logits = logits.float()
            loss = g_hinge_loss(logits)
            stats = {"g_loss": loss.detach()}
            if class_logits is not None:  # fakes D names as the class they were drawn for
                g_class = F.cross_entropy(class_logits.float(), y)
                loss = loss + weight * g_class
                stats["g_class"] = g_class.detach()
            if not self.all_finite(loss, logits):
                return None
            self.opt_g.zero_grad(set_to_none=True)
            acc.backward(loss)
        self.opt_g.step()
        return stats

    # --- EMA of G ------------------------------------------------------------------------------------------
    def ema_phase(self, batch_size: int) -> None:
        G = self.accelerator.unwrap_model(self.G)
        self.average_buffers(G)
        total = batch_size * self.accelerator.num_processes
        self.ema.update(G, total, self.images_seen)

    @torch.no_grad()
    def average_buffers(self, module: nn.Module) -> None:
        """Mean over processes of ``module``'s floating-point buffers. G's BN running statistics move with
        each process's own fakes, so replicas (and the G_ema that copies them) would drift apart; every
        process starts a step from the same statistics (DDP broadcasts them before a forward), so the mean
        of the updated ones is one update with the mean of the per-process batch statistics."""
        buffers = [b for b in module.buffers() if b.is_floating_point()]
        if self.accelerator.num_processes == 1 or not buffers:
            return
        flat = self.accelerator.reduce(torch.cat([b.reshape(-1) for b in buffers]), "mean")
        for b, mean in zip(buffers, flat.split([b.numel() for b in buffers])):
            b.copy_(mean.view_as(b))

    def skip(self, step: int, limit: int) -> None:
        """Count a skipped step; stop the run once more than ``limit`` have been skipped."""
        self.skipped_nonfinite += 1
        if self.skipped_nonfinite > limit:
            raise NonFiniteError(
                f"stopping at step {step}: {self.skipped_nonfinite} steps had a non-finite loss or logit "
                f"(limit train.max_nonfinite={limit}); lower train.lr_d/lr_g, check the data, or try "
                f"bf16/fp32 instead of fp16"
            )

    # --- checkpoint state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        unwrap, scaler = self.accelerator.unwrap_model, self.accelerator.scaler
        return {
            "G": unwrap(self.G).state_dict(),
            "D": unwrap(self.D).state_dict(),
            "G_ema": self.ema.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "augment": self.augment.state_dict(),
            "lecam": self.lecam.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "step": self.step,
            "d_updates": self.d_updates,
            "images_seen": self.images_seen,
            "skipped_nonfinite": self.skipped_nonfinite,
            "last_r1": self.last_r1,
        }

    def model_states(self) -> dict[str, dict[str, torch.Tensor]]:
        """The networks' own tensors under their checkpoint names (to check a checkpoint fits)."""
        unwrap = self.accelerator.unwrap_model
        return {
            "G": unwrap(self.G).state_dict(),
            "D": unwrap(self.D).state_dict(),
            "G_ema": self.ema.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unwrap, scaler = self.accelerator.unwrap_model, self.accelerator.scaler
        unwrap(self.G).load_state_dict(state["G"])
        unwrap(self.D).load_state_dict(state["D"])
        self.ema.load_state_dict(state["G_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.augment.load_state_dict(state["augment"])
        self.lecam.load_state_dict(state["lecam"])
        if scaler is not None and state.get("scaler") is not None:
            scaler.load_state_dict(state["scaler"])
        self.step, self.d_updates = int(state["step"]), int(state["d_updates"])
        self.images_seen, self.skipped_nonfinite = int(state["images_seen"]), int(state["skipped_nonfinite"])
        self.last_r1 = state.get("last_r1")


def reduce_stats(accelerator: Accelerator, stats: Stats) -> dict[str, float]:
    """Means over processes of a step's statistics, as plain floats (one host sync for all of them)."""
    names = sorted(stats)
    values = torch.stack([stats[n].float().reshape(()) for n in names])
    values = accelerator.reduce(values, "mean")
    return {n: float(v) for n, v in zip(names, values.tolist())}
