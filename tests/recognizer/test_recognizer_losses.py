"""The coarse-fine loss against hand-computed values, and the fused + auxiliary combination."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from expr_common.labels import (
    ANGER,
    DISGUST,
    FEAR,
    HAPPINESS,
    NEUTRAL,
    SADNESS,
    SURPRISE,
    UNLABELLED,
    mu_matrix,
)
from recognizer.config import LossConfig
from recognizer.losses import CoarseFineLoss, build_loss, recognizer_loss

# Distinct coefficients, so that a wrong quadrant pair picks a visibly wrong value.
MU = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)  # mu12 mu13 mu14 mu23 mu24 mu34


def probs(label_prob: float, label: int, pred: int) -> torch.Tensor:
    """One row: p[label] = label_prob, the rest on ``pred`` (the argmax) and a little elsewhere."""
    if label == pred:
        row = torch.full((8,), (1.0 - label_prob) / 7)
        row[label] = label_prob
    else:
        row = torch.full((8,), 0.01)
        row[label] = label_prob
        row[pred] = 0.0
        row[pred] = 1.0 - row.sum()
    assert row.argmax() == pred and abs(float(row.sum()) - 1.0) < 1e-6
    return row


def test_zero_mu_is_cross_entropy() -> None:
    torch.manual_seed(0)
    p = torch.randn(16, 8).softmax(dim=1)
    y = torch.randint(0, 8, (16,))
    loss = CoarseFineLoss(mu=(0.0,) * 6)(p, y)
    assert torch.allclose(loss, F.nll_loss(p.log(), y), atol=1e-6)


@pytest.mark.parametrize(
    ("label", "pred", "mu"),
    [
        (HAPPINESS, SADNESS, 0.2),  # Q1 vs Q3: mu13
        (ANGER, NEUTRAL, 0.5),  # Q2 vs Q4: mu24
        (SURPRISE, FEAR, 0.1),  # Q1 vs Q2: mu12
        (SADNESS, HAPPINESS, 0.2),  # symmetric: mu31 = mu13
        (NEUTRAL, SADNESS, 0.6),  # Q4 vs Q3: mu34
    ],
)
def test_cross_quadrant_error_is_scaled(label: int, pred: int, mu: float) -> None:
    p = probs(0.2, label, pred)[None]
    loss = CoarseFineLoss(mu=MU)(p, torch.tensor([label]))
    assert loss.item() == pytest.approx((1 + mu) * -math.log(0.2), rel=1e-6)


def test_default_mu_penalises_opposite_quadrants_double() -> None:
    p = probs(0.2, HAPPINESS, SADNESS)[None]  # Q1 vs Q3: opposite, default mu 1.0
    assert CoarseFineLoss()(p, torch.tensor([HAPPINESS])).item() == pytest.approx(
        -2 * math.log(0.2), rel=1e-6
    )


def test_same_quadrant_error_and_correct_prediction_are_plain_ce() -> None:
    loss = CoarseFineLoss(mu=MU)
    wrong_same = probs(0.2, ANGER, DISGUST)[None]  # both Q2
    assert loss(wrong_same, torch.tensor([ANGER])).item() == pytest.approx(-math.log(0.2), rel=1e-6)
    right = probs(0.9, FEAR, FEAR)[None]
    assert loss(right, torch.tensor([FEAR])).item() == pytest.approx(-math.log(0.9), rel=1e-6)


def test_unlabelled_rows_are_ignored() -> None:
    loss = CoarseFineLoss(mu=MU)
    rows = torch.stack([probs(0.2, HAPPINESS, SADNESS), probs(0.3, ANGER, ANGER)])
    y = torch.tensor([HAPPINESS, ANGER])
    junk = torch.zeros(1, 8)  # log(0) would be inf if it were read
    with_junk = loss(torch.cat([rows[:1], junk, rows[1:]]), torch.tensor([HAPPINESS, UNLABELLED, ANGER]))
    assert torch.isfinite(with_junk)
    assert with_junk.item() == pytest.approx(loss(rows, y).item(), rel=1e-6)
    none = torch.full((2, 8), 1 / 8, requires_grad=True)
    empty = loss(none, torch.tensor([UNLABELLED, UNLABELLED]))
    assert empty.item() == 0.0
    empty.backward()  # still part of the graph, so a step on an unlabelled batch does not crash


def test_per_sample_weights() -> None:
    loss = CoarseFineLoss(mu=MU)
    p = torch.stack([probs(0.2, HAPPINESS, SADNESS), probs(0.5, ANGER, ANGER)])
    y = torch.tensor([HAPPINESS, ANGER])
    t0, t1 = 1.2 * -math.log(0.2), -math.log(0.5)
    assert loss(p, y, torch.tensor([1.0, 1.0])).item() == pytest.approx((t0 + t1) / 2, rel=1e-6)
    assert loss(p, y, torch.tensor([0.5, 2.0])).item() == pytest.approx((0.5 * t0 + 2 * t1) / 2, rel=1e-6)
    assert loss(p, y, torch.tensor([0.0, 1.0])).item() == pytest.approx(t1 / 2, rel=1e-6)


def test_no_gradient_through_the_penalty_choice() -> None:
    # d/dp[y] of -(1 + mu) log p[y] is -(1 + mu) / p[y]; nothing flows to the argmax's entry.
    p = probs(0.2, HAPPINESS, SADNESS)[None].requires_grad_(True)
    CoarseFineLoss(mu=MU)(p, torch.tensor([HAPPINESS])).backward()
    expected = torch.zeros(1, 8)
    expected[0, HAPPINESS] = -1.2 / 0.2
    assert torch.allclose(p.grad, expected, atol=1e-5)


def test_clamping_keeps_zero_probabilities_finite() -> None:
    p = torch.zeros(1, 8)
    p[0, NEUTRAL] = 1.0
    loss = CoarseFineLoss(mu=MU, eps=1e-8)(p, torch.tensor([ANGER]))
    assert loss.item() == pytest.approx(1.5 * -math.log(1e-8), rel=1e-5)  # Q2 vs Q4: mu24 = 0.5


def test_build_loss() -> None:
    cf = build_loss(LossConfig(mu=MU, label_smoothing=0.0))
    assert torch.equal(cf.mu, torch.tensor(mu_matrix(MU)))
    ce = build_loss(LossConfig(kind="ce", mu=MU, label_smoothing=0.0))
    assert torch.count_nonzero(ce.mu) == 0
    p = probs(0.2, HAPPINESS, SADNESS)[None]
    y = torch.tensor([HAPPINESS])
    assert ce(p, y).item() == pytest.approx(-math.log(0.2), rel=1e-6)
    assert cf(p, y).item() == pytest.approx(1.2 * -math.log(0.2), rel=1e-6)


def test_recognizer_loss_masks_auxiliary_terms() -> None:
    torch.manual_seed(0)
    loss_fn = build_loss(LossConfig(mu=MU, label_smoothing=0.0))
    outputs = {k: torch.randn(4, 8).softmax(dim=1) for k in ("prob", "prob_v", "prob_a")}
    y = torch.tensor([0, 1, UNLABELLED, 5])
    has_audio = torch.tensor([True, False, True, True])
    has_video = torch.tensor([True, True, True, False])
    parts = recognizer_loss(loss_fn, outputs, y, has_audio, has_video, aux_weight=0.25)
    keep_a, keep_v = [0, 3], [0, 1]  # labelled and with the modality
    assert torch.allclose(parts["loss_a"], loss_fn(outputs["prob_a"][keep_a], y[keep_a]))
    assert torch.allclose(parts["loss_v"], loss_fn(outputs["prob_v"][keep_v], y[keep_v]))
    assert torch.allclose(parts["loss_fused"], loss_fn(outputs["prob"], y))
    expected = parts["loss_fused"] + 0.25 * (parts["loss_a"] + parts["loss_v"])
    assert torch.allclose(parts["loss"], expected)


def test_recognizer_loss_single_branch_has_no_aux() -> None:
    torch.manual_seed(0)
    loss_fn = build_loss(LossConfig())
    p = torch.randn(3, 8).softmax(dim=1)
    parts = recognizer_loss(loss_fn, {"prob": p, "prob_v": p}, torch.tensor([0, 1, 2]), aux_weight=1.0)
    assert set(parts) == {"loss", "loss_fused"}
    assert torch.equal(parts["loss"], parts["loss_fused"])


def test_label_smoothing_is_cross_entropy_against_the_smoothed_target() -> None:
    torch.manual_seed(0)
    p = torch.randn(16, 8).softmax(dim=1)
    y = torch.randint(0, 8, (16,))
    loss = CoarseFineLoss(mu=(0.0,) * 6, label_smoothing=0.2)(p, y)
    assert torch.allclose(loss, F.cross_entropy(p.log(), y, label_smoothing=0.2), atol=1e-6)
    plain = CoarseFineLoss(mu=MU)(p, y)
    assert not torch.allclose(CoarseFineLoss(mu=MU, label_smoothing=0.1)(p, y), plain)
    assert build_loss(LossConfig(label_smoothing=0.1)).label_smoothing == 0.1
    with pytest.raises(ValueError, match="label_smoothing"):
        LossConfig(label_smoothing=1.0)
