"""Coarse-fine granularity loss (paper section 3.5; docs/method.md, "Coarse-fine granularity loss").

L_cf = -(1/N) sum_i w_i (1 + mu[g(pred_i), g(y_i)]) log p_i[y_i]

With label smoothing s, ``log p_i[y_i]`` becomes ``(1 - s) log p_i[y_i] + s mean_c log p_i[c]`` (the
cross-entropy against a target that puts s/C on every class besides 1 - s on y_i).

g maps a class to its valence-arousal quadrant, pred_i is the argmax of p_i (a constant: no gradient flows
through the choice of penalty), mu is the symmetric 4x4 matrix of labels.mu_matrix with a zero diagonal,
so an error inside the right quadrant costs plain cross-entropy and one across quadrants costs more.
The loss takes probabilities, not logits, because the fused P is a mixture of two softmaxes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from expr_common.labels import DEFAULT_COARSE_GROUPS, DEFAULT_MU, MU_PAIRS, UNLABELLED, mu_matrix
from recognizer.config import LossConfig


class CoarseFineLoss(nn.Module):
    """``forward(prob [N, C], target [N], weight [N] | None) -> scalar``; targets of -1 are ignored.

    N in 1/N counts the labelled samples, so per-sample weights scale a sample's share in absolute terms
    (a synthetic sample at weight 0.5 counts half a real one, whatever else is in the batch). With all mu = 0
    this is exactly ``F.nll_loss(log(prob), target, ignore_index=-1)``.
    """

    def __init__(
        self,
        groups: Sequence[int] = DEFAULT_COARSE_GROUPS,
        mu: Sequence[float] = DEFAULT_MU,
        eps: float = 1e-8,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing
        # Not persistent: they are rebuilt from the config that every checkpoint carries.
        self.register_buffer("groups", torch.tensor(list(groups), dtype=torch.long), persistent=False)
        self.register_buffer("mu", torch.tensor(mu_matrix(list(mu)), dtype=torch.float32), persistent=False)
        self.eps = eps

    def forward(
        self, prob: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        N, C = prob.shape
        if self.groups.numel() != C:
            raise ValueError(f"{self.groups.numel()} coarse groups for {C} classes")
        prob = prob.float()  # the log of a bf16 probability is too coarse for a loss
        target = target.long()
        labelled = target != UNLABELLED
        safe = torch.where(labelled, target, torch.zeros_like(target))  # any valid index; masked below
        log_prob = torch.log(prob.clamp_min(self.eps))
        nll = -log_prob.gather(1, safe[:, None]).squeeze(1)
        if self.label_smoothing > 0:
            nll = (1.0 - self.label_smoothing) * nll - self.label_smoothing * log_prob.mean(dim=1)
        pred = prob.detach().argmax(dim=1)
        factor = 1.0 + self.mu[self.groups[pred], self.groups[safe]]
        terms = factor * nll
        if weight is not None:
            terms = terms * weight.to(terms.dtype)
        # where, not multiply: an ignored row may hold junk (NaN probabilities), and 0 * NaN is NaN.
        terms = torch.where(labelled, terms, torch.zeros_like(terms))
        return terms.sum() / labelled.sum().clamp_min(1)


def build_loss(cfg: LossConfig) -> CoarseFineLoss:
    """The configured loss; "ce" is the same module with every mu at 0, i.e. plain NLL on probabilities,
    so both kinds share the -1 handling, the weights and the clamping."""
    mu = cfg.mu if cfg.kind == "coarse_fine" else (0.0,) * len(MU_PAIRS)
    return CoarseFineLoss(cfg.coarse_groups, mu, cfg.eps, cfg.label_smoothing)


def recognizer_loss(
    loss_fn: nn.Module,
    outputs: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    has_audio: torch.Tensor | None = None,
    has_video: torch.Tensor | None = None,
    aux_weight: float = 0.5,
    weight: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """``loss = L(P) + aux_weight * (L(P_v) + L(P_a))`` from ``AudioVisualRecognizer`` outputs.

    A branch's auxiliary term covers only the samples that have its modality (the others are relabelled
    -1 for it). A one-branch model has no auxiliary term: its fused P is the branch's own P.
    Returns ``loss`` (to backpropagate) and its parts ``loss_fused``, ``loss_v``, ``loss_a`` (to log).
    """
    parts: dict[str, torch.Tensor] = {"loss_fused": loss_fn(outputs["prob"], labels, weight)}
    total = parts["loss_fused"]
    if "prob_v" in outputs and "prob_a" in outputs:
        for key, mask in (("v", has_video), ("a", has_audio)):
            branch_labels = labels if mask is None else torch.where(mask.bool(), labels, UNLABELLED)
            parts[f"loss_{key}"] = loss_fn(outputs[f"prob_{key}"], branch_labels, weight)
            total = total + aux_weight * parts[f"loss_{key}"]
    parts["loss"] = total
    return parts


def with_every_parameter(loss: torch.Tensor, model: nn.Module, num_processes: int) -> torch.Tensor:
    """Under DDP (``num_processes > 1``), ``loss`` plus a zero-weighted sum of every trainable parameter.

    A branch runs only on the samples that have its modality (model.py): a batch of video-only clips (GAN,
    CK+), or one where modality dropout hid the same modality everywhere, leaves that branch out of this
    process's graph, and DDP would wait for its gradients forever or fail. The zero term gives every
    parameter a (zero) gradient here; the other processes' gradients still arrive through the all-reduce.
    With one process the loss is returned as it is, so an absent branch keeps ``grad None``."""
    if num_processes <= 1:
        return loss
    return loss + 0.0 * sum(p.sum() for p in model.parameters() if p.requires_grad)
