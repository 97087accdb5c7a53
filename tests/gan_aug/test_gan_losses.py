"""Hinge, LeCam and R1 on hand-built numbers."""

from __future__ import annotations

import pytest
import torch

from gan_aug.losses import LeCam, d_hinge_loss, g_hinge_loss, lazy_r1_loss, r1_due, r1_penalty
from gan_aug.networks import Discriminator


def test_hinge_losses_on_hand_built_logits() -> None:
    real = torch.tensor([2.0, 0.5, -1.0])  # relu(1 - real) = 0, 0.5, 2
    fake = torch.tensor([-2.0, 0.0, 0.5])  # relu(1 + fake) = 0, 1, 1.5
    assert d_hinge_loss(real, fake).item() == pytest.approx(2.5 / 3 + 2.5 / 3)
    assert g_hinge_loss(fake).item() == pytest.approx(0.5)
    # Beyond the margin D gets nothing more for being right.
    assert d_hinge_loss(torch.tensor([5.0]), torch.tensor([-7.0])).item() == 0.0


def test_lecam_anchors_and_penalty() -> None:
    lecam = LeCam(decay=0.5)
    lecam.update(torch.tensor([1.0, 3.0]), torch.tensor([-1.0, -3.0]))
    assert (lecam.anchor_real, lecam.anchor_fake) == (2.0, -2.0)  # the first batch sets the anchors
    lecam.update(torch.tensor([4.0, 4.0]), torch.tensor([0.0, 0.0]))
    assert (lecam.anchor_real, lecam.anchor_fake) == (3.0, -1.0)  # 0.5 * old + 0.5 * new
    real, fake = torch.tensor([0.0, -2.0]), torch.tensor([1.0, 5.0])
    # relu(real - (-1)) = 1, 0 -> mean sq 0.5;  relu(3 - fake) = 2, 0 -> mean sq 2
    assert lecam.penalty(real, fake).item() == pytest.approx(2.5)
    assert (lecam.anchor_real, lecam.anchor_fake) == (3.0, -1.0)  # penalty alone does not move them


def test_lecam_call_updates_first_and_start_step_and_state() -> None:
    lecam = LeCam(decay=0.9, start_step=2)
    lecam(torch.tensor([1.0]), torch.tensor([-1.0]))
    value = lecam(torch.tensor([3.0]), torch.tensor([-3.0]))  # before start_step: anchors = this batch
    assert (lecam.anchor_real, lecam.anchor_fake) == (3.0, -3.0)
    assert value.item() == pytest.approx((3.0 + 3.0) ** 2 + (3.0 + 3.0) ** 2)
    lecam.update(torch.tensor([13.0]), torch.tensor([-13.0]))  # from start_step on: EMA with decay 0.9
    assert lecam.anchor_real == pytest.approx(0.9 * 3 + 0.1 * 13)
    restored = LeCam()
    restored.load_state_dict(lecam.state_dict())
    assert restored.state_dict() == lecam.state_dict()
    # Gradient goes to the logits, not to the (detached) anchors.
    real = torch.tensor([5.0], requires_grad=True)
    lecam.penalty(real, torch.tensor([0.0])).backward()
    assert real.grad.item() == pytest.approx(2 * (5.0 - lecam.anchor_fake))


def test_r1_zero_for_constant_d_and_exact_for_linear_d() -> None:
    x = torch.randn(3, 3, 8, 8, requires_grad=True)
    constant = x.sum(dim=(1, 2, 3)) * 0.0 + 1.5  # depends on x only by a zero factor
    assert r1_penalty(x, constant).item() == 0.0
    assert r1_penalty(x, torch.ones(3, requires_grad=True)).item() == 0.0  # no path from x at all
    w = torch.randn(3, 8, 8)
    linear = (x * w).sum(dim=(1, 2, 3))  # grad_x = w for every sample
    assert r1_penalty(x, linear).item() == pytest.approx(w.square().sum().item(), rel=1e-5)
    assert lazy_r1_loss(x, (x * w).sum(dim=(1, 2, 3)), gamma=0.2, interval=16).item() == pytest.approx(
        0.1 * 16 * w.square().sum().item(), rel=1e-5
    )
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(x.detach(), linear)


def test_r1_on_a_discriminator_reaches_its_weights(tiny_config) -> None:
    D = Discriminator(tiny_config(32).discriminator, 8, 3)
    x = torch.randn(2, 3, 32, 32).requires_grad_(True)
    penalty = r1_penalty(x, D(x, torch.tensor([0, 1]), torch.tensor([2, 0])))
    assert penalty.item() > 0
    penalty.backward()
    grad = D.linear.parametrizations.weight.original.grad
    assert grad is not None and grad.abs().sum() > 0


def test_r1_schedule() -> None:
    assert [s for s in range(40) if r1_due(s, gamma=1.0, interval=16)] == [0, 16, 32]
    assert not any(r1_due(s, gamma=0.0, interval=16) for s in range(40))


def test_class_loss_reads_the_projection_embedding_as_a_classifier(tiny_config):
    from gan_aug.networks import build_networks

    _, D = build_networks(tiny_config())
    D.eval()  # no power-iteration step between the calls compared below
    x = torch.randn(4, 3, 32, 32)
    y, d = torch.tensor([0, 1, 2, 3]), torch.zeros(4, dtype=torch.long)
    logits, class_logits = D(x, y, d, class_logits=True)
    parts = D.forward_parts(x, y, d)
    assert torch.allclose(logits, parts.logits) and class_logits.shape == (4, D.num_classes)
    # Row i, column y_i of the classifier is exactly the projection's class term for that sample.
    assert torch.allclose(class_logits[torch.arange(4), y], parts.class_term, atol=1e-5)
    assert torch.equal(D(x, y, d), parts.logits)  # off by default: plain logits
