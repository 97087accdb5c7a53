"""Decision fusion by the proportion criterion (paper section 3.4; docs/method.md, "Decision fusion").

P = (m * P_a + n * P_v) / (m + n) with integers m, n in 1..5, chosen on validation macro-F1 by a grid over
all 25 pairs. A sample without audio takes P_v, one without video takes P_a. A sample with neither gets
the uniform distribution: it carries no evidence, and a NaN would poison a whole batch's loss.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from expr_common.labels import UNLABELLED
from recognizer.config import FUSION_RANGE

ArrayLike = torch.Tensor | np.ndarray


def proportional_fusion(
    p_a: torch.Tensor,
    p_v: torch.Tensor,
    m: int,
    n: int,
    has_audio: torch.Tensor | None = None,
    has_video: torch.Tensor | None = None,
) -> torch.Tensor:
    """Fused probabilities [B, C] from P_a, P_v [B, C]; masks [B] (bool) default to all present."""
    if m not in FUSION_RANGE or n not in FUSION_RANGE:
        raise ValueError(f"m and n must be integers in 1..5, got m={m}, n={n}")
    B, C = p_v.shape
    fused = (m * p_a + n * p_v) / (m + n)
    # Selected, not re-weighted: a sample without audio gets P_v bit for bit, as a video-only model would
    # give it; (n * P_v) / n can differ in the last bit and flip a near-tie argmax.
    if has_audio is not None:
        fused = torch.where(has_audio.bool()[:, None], fused, p_v)
    if has_video is not None:
        fused = torch.where(has_video.bool()[:, None], fused, p_a)
    if has_audio is not None and has_video is not None:
        neither = ~(has_audio.bool() | has_video.bool())
        fused = torch.where(neither[:, None], torch.full_like(fused, 1.0 / C), fused)
    return fused


def fusion_grid(
    p_a: ArrayLike,
    p_v: ArrayLike,
    has_audio: ArrayLike | None,
    has_video: ArrayLike | None,
    labels: ArrayLike,
    metric_fn: Callable[[np.ndarray, np.ndarray], float],
) -> tuple[np.ndarray, tuple[int, int]]:
    """Score all 25 (m, n) pairs: ``table[m - 1, n - 1] = metric_fn(labels, argmax P)`` over labelled
    samples (label -1 is never scored). Returns the table and the best (m, n); ties go to the first pair
    in row-major order (smallest m, then smallest n)."""
    # Once, on the CPU in float64: metric_fn wants numpy, and 25 argmaxes cost nothing next to inference.
    pa = torch.from_numpy(_to_numpy(p_a).astype(np.float64))
    pv = torch.from_numpy(_to_numpy(p_v).astype(np.float64))
    ha = None if has_audio is None else torch.from_numpy(_to_numpy(has_audio).astype(bool))
    hv = None if has_video is None else torch.from_numpy(_to_numpy(has_video).astype(bool))
    y = _to_numpy(labels).astype(np.int64)
    scored = y != UNLABELLED
    table = np.zeros((len(FUSION_RANGE), len(FUSION_RANGE)), dtype=np.float64)
    for i, m in enumerate(FUSION_RANGE):
        for j, n in enumerate(FUSION_RANGE):
            pred = proportional_fusion(pa, pv, m, n, ha, hv).argmax(dim=1).numpy()
            table[i, j] = float(metric_fn(y[scored], pred[scored]))
    # np.nanargmax returns the first maximum of the row-major flattening: the tie rule above.
    best = int(np.nanargmax(table))
    return table, (FUSION_RANGE[best // table.shape[1]], FUSION_RANGE[best % table.shape[1]])


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if not isinstance(x, torch.Tensor):
        return np.asarray(x)
    x = x.detach().cpu()
    # numpy has no bfloat16/float16 counterpart that every caller expects; widen those first.
    return (x.double() if x.dtype in (torch.bfloat16, torch.float16) else x).numpy()
