"""DiffAugment ops and the adaptive probability: same draw on real and fake, exact geometry, gradients."""

from __future__ import annotations

import pytest
import torch

from gan_aug.augment import AdaptiveAugment, AugmentParams, apply_augment, diff_augment, sample_augment_params
from gan_aug.config import AUGMENT_POLICIES, AugmentConfig


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_same_seed_same_output_and_different_seed_differs() -> None:
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    a = diff_augment(x, generator=_gen(1))
    b = diff_augment(x, generator=_gen(1))
    c = diff_augment(x, generator=_gen(2))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - c).abs().max() > 0.1
    assert (a - x).abs().max() > 0.1  # it did augment


def test_real_and_fake_get_the_same_transform_when_seeded_equally() -> None:
    real = torch.rand(6, 3, 16, 16) + 0.5  # strictly positive: a zero can only come from the augmentation
    fake = torch.rand(6, 3, 16, 16) + 0.5
    p_real = sample_augment_params(6, 16, 16, generator=_gen(3))
    p_fake = sample_augment_params(6, 16, 16, generator=_gen(3))
    for key, value in vars(p_real).items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(value, getattr(p_fake, key), rtol=0, atol=0)

    # Geometry: translation padding and cutout zero the same pixels in both batches.
    geo = ("translation", "cutout")
    aug_real = diff_augment(real, geo, generator=_gen(3))
    aug_fake = diff_augment(fake, geo, generator=_gen(3))
    assert (aug_real == 0).any()
    assert torch.equal(aug_real == 0, aug_fake == 0)

    # Every op is affine in x, A(x) = Lx + c; with one draw, A(real) - A(fake) = A(real - fake) - A(0).
    # Two different draws for real and fake would break this identity.
    aug = {
        name: diff_augment(t, generator=_gen(3))
        for name, t in {
            "real": real,
            "fake": fake,
            "diff": real - fake,
            "zero": torch.zeros_like(real),
        }.items()
    }
    torch.testing.assert_close(aug["real"] - aug["fake"], aug["diff"] - aug["zero"])
    other = diff_augment(fake, generator=_gen(4))
    assert (aug["real"] - other - aug["diff"] + aug["zero"]).abs().max() > 1e-2


def test_translation_is_an_exact_shift_with_zero_padding() -> None:
    x = torch.arange(2 * 1 * 5 * 6, dtype=torch.float32).reshape(2, 1, 5, 6) + 1
    params = AugmentParams(
        policy=("translation",),
        height=5,
        width=6,
        shift_y=torch.tensor([1, 0]),
        shift_x=torch.tensor([-2, 0]),
        max_shift=(2, 2),
    )
    out = apply_augment(x, params)
    torch.testing.assert_close(out[0, :, 1:, :4], x[0, :, :4, 2:])  # down 1, left 2
    assert out[0, :, 0, :].abs().sum() == 0 and out[0, :, :, 4:].abs().sum() == 0
    torch.testing.assert_close(out[1], x[1])  # zero shift is the identity


def test_cutout_erases_exactly_its_square() -> None:
    x = torch.ones(2, 3, 8, 8)
    params = AugmentParams(
        policy=("cutout",),
        height=8,
        width=8,
        cutout_top=torch.tensor([-1, 2]),
        cutout_left=torch.tensor([2, 2]),
        cutout_on=torch.tensor([True, False]),
        cutout_size=(4, 4),
    )
    out = apply_augment(x, params)
    expected = torch.ones(8, 8)
    expected[0:3, 2:6] = 0  # rows -1..2 clipped to the image
    torch.testing.assert_close(out[0], expected.expand(3, 8, 8))
    torch.testing.assert_close(out[1], x[1])  # gated off


def test_parameter_ranges_follow_diffaugment() -> None:
    params = sample_augment_params(2000, 32, 32, generator=_gen(0))
    assert params.max_shift == (4, 4) and params.cutout_size == (16, 16)  # 1/8 and 1/2 of the side
    assert params.shift_y.abs().max() == 4 and params.shift_x.abs().max() == 4
    assert -0.5 <= params.brightness.min() and params.brightness.max() <= 0.5
    assert 0.0 <= params.saturation.min() and params.saturation.max() <= 2.0
    assert 0.5 <= params.contrast.min() and params.contrast.max() <= 1.5
    assert params.cutout_on.all()
    half = sample_augment_params(2000, 32, 32, p=0.5, generator=_gen(0))
    assert 0.4 < half.cutout_on.float().mean() < 0.6
    assert 0.4 < (half.shift_y == 0).float().mean() < 0.65  # gated samples plus the natural zero shifts


def test_p_zero_is_identity_and_unknown_policy_fails() -> None:
    x = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(diff_augment(x, p=0.0, generator=_gen(0)), x)
    torch.testing.assert_close(diff_augment(x, policy=()), x)
    with pytest.raises(ValueError, match="unknown augment policy"):
        diff_augment(x, policy=("flip",))


def test_gradients_flow_through_every_op() -> None:
    x = (torch.rand(2, 3, 8, 8, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    params = sample_augment_params(2, 8, 8, AUGMENT_POLICIES, generator=_gen(5))
    assert torch.autograd.gradcheck(lambda t: apply_augment(t, params), (x,), fast_mode=True)
    diff_augment(x, generator=_gen(5)).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    x.grad = None
    diff_augment(x, ("translation", "cutout"), generator=_gen(5)).sum().backward()
    assert (x.grad == 0).any() and (x.grad == 1).any()  # erased or out-of-view pixels get no gradient


def _observe(aug: AdaptiveAugment, value: float, batches: int, batch: int = 10) -> None:
    for _ in range(batches):
        aug.observe(torch.full((batch,), value))


def test_adaptive_p_moves_with_overconfidence_and_stays_in_unit_interval() -> None:
    cfg = AugmentConfig(p=0.5, adaptive=True, target=0.6, speed_images=100, interval=2)
    aug = AdaptiveAugment(cfg)
    _observe(aug, 3.0, 1)
    assert aug.p == 0.5  # no adjustment before `interval` batches
    _observe(aug, 3.0, 1)  # r_t = 1 > 0.6: D is overconfident on reals
    assert aug.p == pytest.approx(0.5 + 20 / 100) and aug.last_rt == 1.0
    _observe(aug, -1.0, 2)  # r_t = -1 < 0.6
    assert aug.p == pytest.approx(0.5)
    _observe(aug, 2.0, 40)
    assert aug.p == 1.0
    _observe(aug, -2.0, 40)
    assert aug.p == 0.0
    aug.p = 0.3  # exactly on target (8 of 10 positive: mean sign 0.6): p stays
    for _ in range(2):
        aug.observe(torch.tensor([1.0] * 8 + [-1.0] * 2))  # mean sign 0.6
    assert aug.p == pytest.approx(0.3)


def test_adaptive_off_keeps_p_and_state_round_trips() -> None:
    fixed = AdaptiveAugment(AugmentConfig(p=0.25, adaptive=False, interval=1))
    _observe(fixed, 5.0, 3)
    assert fixed.p == 0.25 and fixed.last_rt == 1.0

    cfg = AugmentConfig(p=0.5, adaptive=True, speed_images=1000, interval=4)
    a, b = AdaptiveAugment(cfg), AdaptiveAugment(cfg)
    _observe(a, 1.0, 6)  # one adjustment and two batches into the next
    b.load_state_dict(a.state_dict())
    assert b.p == a.p and b.state_dict() == a.state_dict()
    _observe(a, 1.0, 2)
    _observe(b, 1.0, 2)
    assert b.p == a.p == pytest.approx(0.5 + 2 * 40 / 1000)
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(a(x, _gen(0)), diff_augment(x, cfg.policy, a.p, _gen(0)))
