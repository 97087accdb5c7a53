"""GCSA and the channel shuffle: the paper's permutation, shapes, the off switch, gradients."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange
from torch import nn

from recognizer.gcsa import GCSA, channel_shuffle, make_attention


def test_channel_shuffle_is_the_papers_permutation() -> None:
    # Channel i holds the value i, so the output's values are the source indices.
    x = torch.arange(8.0).reshape(1, 8, 1, 1)
    out = channel_shuffle(x, groups=4)
    assert out.flatten().tolist() == [0, 2, 4, 6, 1, 3, 5, 7]


def test_channel_shuffle_moves_whole_planes_and_is_invertible() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 8, 3, 5)
    out = channel_shuffle(x, groups=4)
    order = [0, 2, 4, 6, 1, 3, 5, 7]
    assert torch.equal(out, x[:, order])
    # Shuffling with C / groups groups undoes it: the map is a permutation, nothing is lost or repeated.
    assert torch.equal(channel_shuffle(out, groups=2), x)
    assert sorted(order) == list(range(8))


def test_channel_shuffle_rejects_indivisible_channels() -> None:
    try:
        channel_shuffle(torch.zeros(1, 6, 2, 2), groups=4)
    except ValueError as exc:
        assert "divisible" in str(exc)
    else:
        raise AssertionError("6 channels in 4 groups must be refused")


def test_gcsa_keeps_shape_and_changes_values() -> None:
    torch.manual_seed(0)
    gcsa = GCSA(16)
    x = torch.randn(2, 16, 9, 11)
    y = gcsa(x)
    assert y.shape == x.shape
    assert not torch.allclose(y, x)


def test_gcsa_follows_the_formula() -> None:
    # F1 = sigmoid(MLP(perm F)) * F; F2 = shuffle(F1, 4); out = sigmoid(spatial(F2)) * F2.
    torch.manual_seed(0)
    gcsa = GCSA(8, reduction=4, groups=4, kernel=7).eval()
    with torch.no_grad():  # away from the uniform start, so that every layer shapes the output
        for param in gcsa.parameters():
            param.normal_(0.0, 0.3)
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        f1 = (
            torch.sigmoid(
                rearrange(gcsa.channel_mlp(rearrange(x, "b c h w -> b h w c")), "b h w c -> b c h w")
            )
            * x
        )
        f2 = f1[:, [0, 2, 4, 6, 1, 3, 5, 7]]
        expected = torch.sigmoid(gcsa.spatial(f2)) * f2
        assert torch.allclose(gcsa(x), expected, atol=1e-6)
    # The paper's sizes: MLP C -> C/4 -> C and two 7x7 convs through C/4 channels.
    assert gcsa.channel_mlp[0].out_features == 2 and gcsa.channel_mlp[2].out_features == 8
    assert gcsa.spatial[0].kernel_size == (7, 7) and gcsa.spatial[0].out_channels == 2


def test_disabled_attention_is_identity() -> None:
    assert isinstance(make_attention(16, enabled=False), nn.Identity)
    assert isinstance(make_attention(16, enabled=True), GCSA)
    with pytest.raises(ValueError, match="uniform or random"):
        make_attention(16, enabled=True, start="zeros")


def test_gates_start_uniform_then_learn() -> None:
    # Zero-initialised last layers: at the start GCSA is 0.25 * shuffle(F), in training and in eval mode.
    torch.manual_seed(0)
    gcsa = GCSA(8)
    x = torch.randn(2, 8, 5, 5)
    assert torch.allclose(gcsa(x), 0.25 * channel_shuffle(x, 4), atol=1e-7)
    assert torch.allclose(gcsa.eval()(x), 0.25 * channel_shuffle(x, 4), atol=1e-7)
    gcsa.train()
    optimizer = torch.optim.SGD(gcsa.parameters(), lr=0.1)
    target = torch.randn(2, 8, 5, 5)
    (gcsa(x) - target).square().sum().backward()
    optimizer.step()
    moved = (gcsa(x) - 0.25 * channel_shuffle(x, 4)).abs().max()
    assert moved > 1e-2  # the gates are no longer uniform


def test_gradients_reach_input_and_every_parameter() -> None:
    # From the uniform start only the last layers get a gradient; one step later every parameter does.
    torch.manual_seed(0)
    gcsa = GCSA(8)
    x = torch.randn(2, 8, 5, 5, requires_grad=True)
    optimizer = torch.optim.SGD(gcsa.parameters(), lr=0.1)
    gcsa(x).square().sum().backward()
    optimizer.step()
    optimizer.zero_grad()
    x.grad = None
    gcsa(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in gcsa.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_each_branch_starts_its_gates_as_its_config_says() -> None:
    from dataclasses import replace

    import pytest

    from recognizer.config import AudioConfig, ModelConfig, VisualConfig
    from recognizer.model import AudioVisualRecognizer

    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 5)
    assert not torch.allclose(GCSA(8, uniform_start=False)(x), 0.25 * channel_shuffle(x, 4), atol=1e-3)
    visual, audio = VisualConfig().for_image_size(64), AudioConfig().for_spectrogram(64, 10.0)
    model = AudioVisualRecognizer(ModelConfig(visual=visual, audio=audio))
    assert model.visual.attention.spatial[-1].weight.abs().sum() == 0  # visual default: identity ...
    assert model.visual.attention.gain == 2.0  # ... the uniform start's zeroed gates, doubled
    assert model.audio.attention.spatial[-1].weight.abs().sum() > 0  # audio default: random
    visual, audio = replace(visual, gcsa_start="random"), replace(audio, gcsa_start="uniform")
    swapped = AudioVisualRecognizer(ModelConfig(visual=visual, audio=audio))
    assert swapped.visual.attention.channel_mlp[-1].weight.abs().sum() > 0
    assert swapped.audio.attention.channel_mlp[-1].weight.abs().sum() == 0
    with pytest.raises(ValueError, match="gcsa_start"):
        VisualConfig(gcsa_start="zeros")


def test_an_identity_start_begins_as_the_shuffled_input_and_learns() -> None:
    torch.manual_seed(0)
    gcsa = make_attention(8, True, "identity")
    x = torch.randn(2, 8, 5, 5)
    assert torch.allclose(gcsa(x), channel_shuffle(x, 4), atol=1e-6)  # gates 2 * sigmoid(0) = 1
    optimizer = torch.optim.SGD(gcsa.parameters(), lr=0.1)
    (gcsa(x) - torch.randn(2, 8, 5, 5)).square().sum().backward()
    optimizer.step()
    assert (gcsa(x) - channel_shuffle(x, 4)).abs().max() > 1e-2
    assert torch.allclose(make_attention(8, True, "uniform")(x), 0.25 * channel_shuffle(x, 4), atol=1e-7)
