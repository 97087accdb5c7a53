"""Proportional fusion and the 5x5 (m, n) grid search."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from expr_common.labels import UNLABELLED
from recognizer.fusion import fusion_grid, proportional_fusion


def accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    return float((y == pred).mean())


def test_fusion_formula() -> None:
    torch.manual_seed(0)
    pa, pv = torch.randn(5, 8).softmax(1), torch.randn(5, 8).softmax(1)
    fused = proportional_fusion(pa, pv, 2, 3)
    assert torch.allclose(fused, (2 * pa + 3 * pv) / 5)
    assert torch.allclose(proportional_fusion(pa, pv, 5, 1), (5 * pa + pv) / 6)
    assert torch.allclose(fused.sum(1), torch.ones(5))


def test_missing_modalities_fall_back_exactly() -> None:
    torch.manual_seed(0)
    pa, pv = torch.randn(4, 8).softmax(1), torch.randn(4, 8).softmax(1)
    has_audio = torch.tensor([True, False, True, False])
    has_video = torch.tensor([True, True, False, False])
    fused = proportional_fusion(pa, pv, 3, 5, has_audio, has_video)
    assert torch.equal(fused[1], pv[1])
    assert torch.equal(fused[2], pa[2])
    assert torch.equal(fused[3], torch.full((8,), 1 / 8))
    assert torch.allclose(fused[0], (3 * pa[0] + 5 * pv[0]) / 8)


@pytest.mark.parametrize(("m", "n"), [(0, 1), (1, 6), (6, 2)])
def test_out_of_range_weights_raise(m: int, n: int) -> None:
    with pytest.raises(ValueError):
        proportional_fusion(torch.ones(1, 8) / 8, torch.ones(1, 8) / 8, m, n)


def test_grid_finds_the_only_ratio_that_gets_both_right() -> None:
    # Sample A is right iff 0.5 m > 0.95 n (m/n > 1.9); sample B iff 0.42 n > 0.2 m (m/n < 2.1).
    # Only m/n = 2 satisfies both: (2, 1) and (4, 2) tie, and the tie goes to (2, 1).
    pa = [[0.7, 0.2, 0.1], [0.3, 0.5, 0.2], [0.1, 0.1, 0.8], [0.0, 1.0, 0.0], [0.2, 0.7, 0.1]]
    pv = [[0.0, 0.95, 0.05], [0.5, 0.08, 0.42], [0.9, 0.05, 0.05], [1.0, 0.0, 0.0], [0.1, 0.2, 0.7]]
    labels = np.array([0, 0, 0, 1, 2])
    # Sample 2 has no audio (video says 0: right everywhere); sample 3 is unlabelled (never scored);
    # sample 4 has no video (audio says 1, label 2: wrong everywhere).
    labels[3] = UNLABELLED
    has_audio = np.array([True, True, False, True, True])
    has_video = np.array([True, True, True, True, False])
    seen: list[int] = []

    def metric(y: np.ndarray, pred: np.ndarray) -> float:
        seen.append(len(y))
        return accuracy(y, pred)

    table, best = fusion_grid(np.array(pa), torch.tensor(pv), has_audio, has_video, labels, metric)
    assert table.shape == (5, 5) and len(seen) == 25 and set(seen) == {4}
    assert best == (2, 1)
    assert table[1, 0] == table[3, 1] == pytest.approx(3 / 4)
    assert np.count_nonzero(table == table.max()) == 2
    assert table[0, 0] == pytest.approx(2 / 4)  # m = n: only B and the video-only sample are right
