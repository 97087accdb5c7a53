"""The editing GAN's class teacher (``model.edit.teacher``): a plain CNN that learns the expressions from the
labelled faces (those of ``edit.label_domains``) before the GAN starts, and is then frozen. G's loss names
each edit's target class through it, beside D's own auxiliary classifier.

Why: D's class head is read off its spectral-normed projection embedding, a network constrained to be smooth
for the adversarial game; on real posed faces it never learnt the classes (its loss stayed at chance), so G
had no signal for what an expression looks like. A frozen classifier's gradient as the editor's class
signal is the usual remedy in face editing (a pretrained expression or attribute classifier guiding G). It
sees the edits through the same augmentation as D, which also keeps G from fooling it with pixel noise that
no augmented view agrees on. No I/O here: the trainer feeds the batches and stores the weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.nn import functional as F

from gan_aug.config import TeacherConfig

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    """Two 3x3 convolutions with batch norm and ReLU, then a 2x max-pool (a VGG block)."""
    return [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    ]  # fmt: skip


class ClassTeacher(nn.Module):
    """Faces [B, 3, R, R] in [-1, 1] -> class logits [B, num_classes] (three VGG blocks, mean-pooled)."""

    def __init__(self, num_classes: int, width: int) -> None:
        super().__init__()
        widths = [3, width, 2 * width, 4 * width]
        self.features = nn.Sequential(*(m for a, b in zip(widths[:-1], widths[1:]) for m in _block(a, b)))
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(widths[-1], num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def taught_cross_entropy(logits: torch.Tensor, y: torch.Tensor, taught: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the faces whose ``taught`` flag is set (0 when none is)."""
    per_face = F.cross_entropy(logits.float(), y, reduction="none")
    weight = taught.float()
    return (per_face * weight).sum() / weight.sum().clamp(min=1.0)


def fit_teacher(
    teacher: ClassTeacher,
    cfg: TeacherConfig,
    batches: Iterator[dict[str, torch.Tensor]],
    label_domains: torch.Tensor,
    augment: Augment,
    generator: torch.Generator,
) -> dict[str, float]:
    """Train ``teacher`` for ``cfg.steps`` batches on the faces of ``label_domains`` (AdamW, one-cycle;
    ``augment`` plus horizontal flips), then freeze it in eval mode. Returns its last 10% of steps' mean
    loss and accuracy on the (augmented) training faces, for the log."""
    device = label_domains.device
    opt = torch.optim.AdamW(teacher.parameters(), lr=cfg.lr, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(cfg.steps, 2))
    teacher.train()
    tail, losses, correct, seen = max(1, cfg.steps // 10), [], 0.0, 0.0
    for step in range(cfg.steps):
        batch = next(batches)
        x, y, d = (batch[k].to(device) for k in ("image", "label", "domain"))
        flip = torch.rand(x.shape[0], generator=generator).to(device) < 0.5
        x = augment(torch.where(flip[:, None, None, None], x.flip(-1), x), generator)
        taught = torch.isin(d, label_domains)
        logits = teacher(x)
        loss = taught_cross_entropy(logits, y, taught)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        if step >= cfg.steps - tail:
            losses.append(float(loss.detach()))
            correct += float(((logits.argmax(1) == y) & taught).sum())
            seen += float(taught.sum())
    teacher.eval().requires_grad_(False)
    return {"loss": sum(losses) / max(len(losses), 1), "accuracy": correct / max(seen, 1.0)}
