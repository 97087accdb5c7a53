"""The training phases of the editing GAN (``model.kind: edit``): StarGAN's objectives with GANimation's mask
terms, on the same loop, checkpoints, EMA, augmentation, LeCam, R1 and non-finite guard as the sampling GAN
(:class:`gan_aug.trainer.GanTrainer`, whose state and phases this class reuses).

Each real face ``x`` (class ``c_x``, domain ``d``) is edited to a target class ``c'`` drawn among the
others. D sees reals under ``(c_x, d)`` and edits under ``(c', d)``; its auxiliary classifier learns the
classes from the reals of ``edit.label_domains`` only (StarGAN's mask vector: CK+ and AFEW teach the
expressions, the target domain's faces are what is edited). G's loss: hinge, D naming the edit ``c'``,
cycle ``|G(G(x, c'), c_x) - x|``, identity ``|G(x, c_x) - x|``, and the mask's mean and total variation;
with ``edit.teacher.steps`` also a frozen class teacher (gan_aug/teacher.py, fitted on the labelled faces
before step 1 and stored in every checkpoint) naming the edit ``c'``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch.nn import functional as F

from expr_common.config import ConfigError
from expr_common.logs import get_logger
from gan_aug.grids import edit_sources, save_edit_grids
from gan_aug.losses import d_hinge_loss, g_hinge_loss, r1_due
from gan_aug.run_config import GanTrainConfig
from gan_aug.sampling import STREAM_TEACHER, CellSampler, FrameBatches, FrameTable, step_generator
from gan_aug.teacher import ClassTeacher, fit_teacher, taught_cross_entropy
from gan_aug.trainer import GanTrainer, Stats, frozen

log = get_logger("gan")


def other_classes(y: torch.Tensor, classes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A target class per face, uniform among ``classes`` (sorted, distinct) other than its own (drawn on
    the CPU, like the fakes). The editor is only asked for classes its labelled faces show: a class no
    teaching face has gives D and the teacher nothing to recognise, and G painted noise for it."""
    classes, y_cpu, K = classes.cpu(), y.cpu(), len(classes)
    position = torch.searchsorted(classes, y_cpu).clamp(max=K - 1)
    own = classes[position] == y_cpu  # the face's class is one of the targets: skip it
    picked = (position + torch.randint(1, K, y.shape, generator=generator)) % K  # one of the K - 1 others
    if not bool(own.all()):  # a face of an untaught class may get any target
        picked = torch.where(own, picked, torch.randint(0, K, y.shape, generator=generator))
    return classes[picked].to(y.device)


def mask_smoothness(mask: torch.Tensor) -> torch.Tensor:
    """Mean squared step between neighbouring mask pixels (GANimation's total variation term)."""
    return (mask[..., 1:, :] - mask[..., :-1, :]).square().mean() + (
        mask[..., :, 1:] - mask[..., :, :-1]
    ).square().mean()


class EditTrainer(GanTrainer):
    METRICS = (*GanTrainer.METRICS, "teacher", "cycle", "identity", "mask", "smooth")

    def grid_inputs(self, table: FrameTable) -> dict[str, torch.Tensor]:
        """The same real faces, edited in every grid of the run."""
        return edit_sources(table, self.config.train.grid_columns, self.config.model.generator.resolution)

    def save_grids(self, inputs: dict[str, torch.Tensor], run_root: Path, step: int) -> list[Path]:
        model = self.config.model
        return save_edit_grids(self.generator_ema, inputs, model.num_classes, run_root, step, model.domains)

    def __init__(self, config: GanTrainConfig, accelerator: Accelerator, sampler: CellSampler) -> None:
        super().__init__(config, accelerator, sampler)
        model = config.model
        present = [model.domains.index(d) for d in model.edit.label_domains if d in model.domains]
        if not present:
            raise ConfigError(
                f"edit.label_domains {list(model.edit.label_domains)}: none is in the training data "
                f"(its domains: {', '.join(model.domains)}); name the domains whose labels teach the classes"
            )
        self.label_domains = torch.tensor(present, device=accelerator.device)
        # The edits' target classes: those the labelled domains' faces show (StarGAN's mask vector again).
        cells = sampler.cells
        taught = torch.isin(cells % sampler.num_domains, self.label_domains.cpu())
        self.target_classes = torch.unique(cells[taught] // sampler.num_domains)
        if len(self.target_classes) < 2:
            raise ConfigError(
                f"edit.label_domains {list(model.edit.label_domains)}: their faces show "
                f"{len(self.target_classes)} class(es); editing needs at least two"
            )
        teacher = model.edit.teacher
        self.teacher = ClassTeacher(model.num_classes, teacher.width) if teacher.steps > 0 else None
        if self.teacher is not None:
            self.teacher.to(accelerator.device)

    def before_training(self, table: FrameTable) -> None:
        """A fresh run fits its class teacher on the labelled faces (every process on the same batches, so
        the replicas hold the same teacher); then the teacher is frozen for the GAN's steps."""
        if self.teacher is None:
            return
        cfg, loop = self.config.model.edit.teacher, self.config.train
        resolution = self.config.model.generator.resolution
        batches = FrameBatches(table, cfg.batch_size, resolution, loop.seed, 0, stream=STREAM_TEACHER)
        stream = (batches.batch(n) for n in range(cfg.steps))
        generator = step_generator(loop.seed, 0, 0, STREAM_TEACHER)
        fit = fit_teacher(self.teacher, cfg, stream, self.label_domains, self.augment, generator)
        taught = ", ".join(self.config.model.edit.label_domains)
        log.info("class teacher: %d steps on the faces of %s; last steps' loss %.3f, accuracy %.3f",
                 cfg.steps, taught, fit["loss"], fit["accuracy"])  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        return {**state, "teacher": self.teacher.state_dict()} if self.teacher is not None else state

    def model_states(self) -> dict[str, dict[str, torch.Tensor]]:
        states = super().model_states()
        return {**states, "teacher": self.teacher.state_dict()} if self.teacher is not None else states

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.teacher is not None:
            self.teacher.load_state_dict(state["teacher"])
            self.teacher.eval().requires_grad_(False)

    def _reals(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        device = self.accelerator.device
        real, y, d = (batch[k].to(device, non_blocking=True) for k in ("image", "label", "domain"))
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        return real, y, d

    def d_phase(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> Stats | None:
        loss_cfg, edit_cfg, acc = self.config.model.loss, self.config.model.edit, self.accelerator
        real, y, d = self._reals(batch)
        B = real.shape[0]
        target = other_classes(y, self.target_classes, generator)
        with torch.no_grad(), acc.autocast():
            fake = self.G(real, target, d)
        real_aug, fake_aug = self.augment(real, generator), self.augment(fake.float(), generator)
        with_r1 = r1_due(self.d_updates, loss_cfg.r1_gamma, loss_cfg.r1_interval)
        if with_r1:
            real_aug = real_aug.detach().requires_grad_(True)
        eager = with_r1 and self.config.train.compile  # torch.compile has no double backward
        stance = torch.compiler.set_stance("force_eager") if eager else contextlib.nullcontext()
        with stance, acc.autocast():
            logits, class_logits = self.D(
                torch.cat([real_aug, fake_aug]), torch.cat([y, target]), torch.cat([d, d]), class_logits=True
            )
        real_logits, fake_logits = logits.float().split(B)
        hinge = d_hinge_loss(real_logits, fake_logits)
        if not self.all_finite(hinge, logits):
            return None
        taught = torch.isin(d, self.label_domains)  # the mask vector: whose labels D learns from
        d_class = taught_cross_entropy(class_logits[:B], y, taught)
        loss = hinge + edit_cfg.class_weight * d_class
        stats = {"d_loss": hinge.detach(), "d_class": d_class.detach()}
        return self.d_update(loss, stats, real_logits, fake_logits, real_aug if with_r1 else None)

    def g_phase(
        self, batch_size: int, generator: torch.Generator, batch: dict[str, torch.Tensor] | None = None
    ) -> Stats | None:
        assert batch is not None, "the editing G phase edits the step's real batch"
        cfg, acc = self.config.model.edit, self.accelerator
        real, y, d = self._reals(batch)
        target = other_classes(y, self.target_classes, generator)
        with frozen(acc.unwrap_model(self.D)) as D, acc.autocast():
            edit = self.G(real, target, d, parts=True)
            seen = self.augment(edit.image, generator)  # D and the teacher judge the same view of the edit
            logits, class_logits = D(seen, target, d, class_logits=True)
            back = self.G(edit.image, y, d, parts=True)  # StarGAN's cycle: back to the face's own class
            same = self.G(real, y, d, parts=True)  # an edit to its own class leaves the face as it was
            masks = torch.cat([edit.mask, back.mask, same.mask])
            smooth = mask_smoothness(masks.float())
            if edit.flow is not None:  # a warp moves neighbouring pixels together (its steps in pixels)
                flows = torch.cat([edit.flow, back.flow, same.flow]).float() * (real.shape[-1] / 2)
                smooth = smooth + mask_smoothness(flows)
            terms = {
                "g_loss": g_hinge_loss(logits.float()),
                "g_class": F.cross_entropy(class_logits.float(), target),
                "cycle": (back.image.float() - real).abs().mean(),
                "identity": (same.image.float() - real).abs().mean(),
                "mask": masks.float().mean(),
                "smooth": smooth,
            }
            weights = {
                "g_loss": 1.0, "g_class": cfg.class_weight, "cycle": cfg.cycle_weight,
                "identity": cfg.identity_weight, "mask": cfg.mask_weight, "smooth": cfg.smooth_weight,
            }  # fmt: skip
            if self.teacher is not None:
                terms["teacher"] = F.cross_entropy(self.teacher(seen).float(), target)
                weights["teacher"] = cfg.teacher.weight
            loss = sum(weights[k] * v for k, v in terms.items())
            if not self.all_finite(loss, logits):
                return None
            self.opt_g.zero_grad(set_to_none=True)
            acc.backward(loss)
        self.opt_g.step()
        return {k: v.detach() for k, v in terms.items()}
