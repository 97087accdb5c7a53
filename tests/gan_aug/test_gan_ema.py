"""EMA of G: the half-life rule and one exact lerp step."""

from __future__ import annotations

import pytest
import torch

from gan_aug.config import EmaConfig
from gan_aug.ema import GeneratorEma, ema_beta
from gan_aug.networks import Generator


def test_beta_formula() -> None:
    assert ema_beta(32, 32) == 0.5  # one half-life per step
    assert ema_beta(64, 32) == 0.25
    assert ema_beta(16, 32) == pytest.approx(0.5**0.5)
    assert ema_beta(32, 10_000, cur_images=320, rampup=0.1) == 0.5  # rampup caps the half-life at 32
    assert ema_beta(32, 10, cur_images=1e9, rampup=0.1) == ema_beta(32, 10)  # cap inactive late in training
    assert ema_beta(32, 10_000, cur_images=0, rampup=0.05) == 0.0  # at the start: copy G
    assert ema_beta(32, 0) == 0.0
    with pytest.raises(ValueError, match="cur_images"):
        ema_beta(32, 100, rampup=0.05)


def test_one_update_is_an_exact_lerp_and_buffers_are_copied(tiny_config) -> None:
    G = Generator(tiny_config(32).generator, 8, 3)
    ema = GeneratorEma(G, EmaConfig(half_life_kimg=0.016, rampup=None))  # half-life 16 images
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())
    old = {k: v.clone() for k, v in ema.module.named_parameters()}

    with torch.no_grad():  # G moves: new weights, and a train-mode forward changes BN stats and SN vectors
        for p in G.parameters():
            p.add_(torch.randn_like(p))
    G(torch.randn(8, 16), torch.randint(0, 8, (8,)), torch.randint(0, 3, (8,)))
    beta = ema.update(G, batch_size=8, cur_images=8)
    assert beta == pytest.approx(0.5**0.5)

    new = dict(G.named_parameters())
    for name, p_ema in ema.module.named_parameters():
        expected = beta * old[name] + (1 - beta) * new[name].detach()
        torch.testing.assert_close(p_ema, expected)
        assert not torch.allclose(p_ema, new[name]) and not torch.allclose(p_ema, old[name])
    buffers = dict(G.named_buffers())
    for name, b_ema in ema.module.named_buffers():
        assert torch.equal(b_ema, buffers[name]), name

    copy = GeneratorEma(G, EmaConfig())
    copy.load_state_dict(ema.state_dict())
    z, y, d = torch.randn(2, 16), torch.tensor([1, 2]), torch.tensor([0, 2])
    torch.testing.assert_close(copy(z, y, d), ema(z, y, d))
