"""RHCNN, MCNN and the full recognizer: shapes, frame aggregation, masks and single-modality models."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from recognizer.config import AudioConfig, FusionConfig, ModelConfig, VisualConfig
from recognizer.gcsa import channel_shuffle
from recognizer.mcnn import MCNN
from recognizer.model import AudioVisualRecognizer
from recognizer.rhcnn import RHCNN

# Tiny widths: the tests check wiring, not capacity, on two shared CPU cores.
TINY_V = VisualConfig(stem_widths=(8, 8), stage_widths=(8, 16), blocks_per_stage=1, stem_stride=2)
TINY_A = AudioConfig(branch_widths=(4, 8), stem_pool=(1, 1))


def tiny_model(modalities: str = "av", **visual: object) -> AudioVisualRecognizer:
    v = replace(TINY_V, **visual)
    return AudioVisualRecognizer(
        ModelConfig(visual=v, audio=TINY_A, fusion=FusionConfig(2, 3), modalities=modalities)
    )


@pytest.mark.parametrize("K", [1, 4])
@pytest.mark.parametrize("size", [48, 64])
@pytest.mark.parametrize("temporal", ["mean", "tconv"])
def test_rhcnn_shapes(K: int, size: int, temporal: str) -> None:
    torch.manual_seed(0)
    net = RHCNN(replace(TINY_V, temporal=temporal))
    out = net(torch.randn(2, K, 3, size, size))
    assert out.shape == (2, 16) == (2, net.out_dim)
    assert torch.isfinite(out).all()


def test_rhcnn_mean_is_the_mean_of_frames() -> None:
    # Guards the (b k) fold: a wrong order would mix frames of different clips.
    torch.manual_seed(0)
    net = RHCNN(TINY_V).eval()
    video = torch.randn(2, 4, 3, 48, 48)
    with torch.no_grad():
        clip = net(video)
        per_frame = torch.stack([net(video[:, k : k + 1]) for k in range(4)], dim=1)
    assert torch.allclose(clip, per_frame.mean(dim=1), atol=1e-5)
    assert not torch.allclose(clip[0], clip[1])


def test_rhcnn_takes_non_square_and_small_frames() -> None:
    net = RHCNN(TINY_V)
    assert net(torch.randn(1, 1, 3, 32, 40)).shape == (1, 16)


@pytest.mark.parametrize(("F", "T"), [(32, 16), (64, 50), (40, 23)])
def test_mcnn_shapes(F: int, T: int) -> None:
    torch.manual_seed(0)
    net = MCNN(TINY_A)
    out = net(torch.randn(2, 1, F, T))
    assert out.shape == (2, 24) == (2, net.out_dim)


def test_mcnn_stem_pool_averages_the_input_before_the_branches() -> None:
    from dataclasses import replace

    torch.manual_seed(0)
    pooled = MCNN(replace(TINY_A, stem_pool=(2, 4))).eval()
    audio = torch.randn(2, 1, 64, 401)
    assert pooled(audio).shape == (2, 24)
    x = pooled.input_norm(audio)
    expected = torch.nn.functional.avg_pool2d(x, (2, 4), ceil_mode=True)
    assert pooled.stem(x).shape == (2, 1, 32, 101) and torch.allclose(pooled.stem(x), expected)
    assert isinstance(MCNN(TINY_A).stem, torch.nn.Identity)  # (1, 1): the paper's full-resolution input
    with pytest.raises(ValueError, match="stem_pool"):
        AudioConfig(stem_pool=(0, 2))


def test_mcnn_branch_kernels_are_oriented() -> None:
    net = MCNN(AudioConfig().for_spectrogram(64, 10.0))
    assert net.temporal[0][0].kernel_size == (3, 9)  # long in time (last axis)
    assert net.spectral[0][0].kernel_size == (9, 3)  # long in frequency
    assert net.local[1][0].dilation == (2, 2)  # the second block sees a wider field


@pytest.mark.parametrize("K", [1, 4])
def test_full_model_outputs(K: int) -> None:
    torch.manual_seed(0)
    model = tiny_model()
    out = model(torch.randn(3, K, 3, 48, 48), torch.randn(3, 1, 32, 20))
    for key in ("logits_v", "logits_a", "prob_v", "prob_a", "prob"):
        assert out[key].shape == (3, 8), key
    assert torch.allclose(out["prob"].sum(dim=1), torch.ones(3))
    assert torch.allclose(out["prob"], (2 * out["prob_a"] + 3 * out["prob_v"]) / 5)


def test_masked_batch() -> None:
    torch.manual_seed(0)
    model = tiny_model()
    video, audio = torch.randn(4, 2, 3, 48, 48), torch.randn(4, 1, 32, 20)
    has_video = torch.tensor([True, True, False, True])
    has_audio = torch.tensor([True, False, True, False])
    out = model(video, audio, has_video, has_audio)
    assert torch.equal(out["prob"][1], out["prob_v"][1])  # no audio -> P_v
    assert torch.equal(out["prob"][2], out["prob_a"][2])  # no video -> P_a
    assert torch.allclose(out["prob"][0], (2 * out["prob_a"][0] + 3 * out["prob_v"][0]) / 5)
    assert torch.equal(out["logits_a"][[1, 3]], torch.zeros(2, 8))  # placeholders
    assert torch.equal(out["logits_v"][2], torch.zeros(8))


def test_placeholder_inputs_do_not_leak() -> None:
    # Samples without audio must not reach the audio branch, not even its BatchNorm batch statistics.
    model = tiny_model()
    model.train()
    video, audio = torch.randn(4, 1, 3, 48, 48), torch.randn(4, 1, 32, 20)
    has_audio = torch.tensor([True, False, True, False])
    garbage = audio.clone()
    garbage[~has_audio] = 1e3
    torch.manual_seed(1)
    a = model(video, audio, None, has_audio)
    torch.manual_seed(1)
    b = model(video, garbage, None, has_audio)
    assert torch.equal(a["logits_a"], b["logits_a"])
    assert torch.equal(a["prob"], b["prob"])


def test_batch_without_any_audio() -> None:
    torch.manual_seed(0)
    model = tiny_model()
    video = torch.randn(2, 1, 3, 48, 48)
    out = model(video, None)
    assert torch.equal(out["prob"], out["prob_v"])
    out["prob"].log().mean().backward()
    assert all(p.grad is None for p in model.audio.parameters())
    assert any(p.grad is not None for p in model.visual.parameters())


def test_gradients_reach_both_branches() -> None:
    torch.manual_seed(0)
    model = tiny_model()
    out = model(torch.randn(2, 2, 3, 48, 48), torch.randn(2, 1, 32, 20))
    out["prob"][:, 0].log().mean().backward()
    for branch in (model.visual, model.audio, model.head_v, model.head_a):
        assert all(p.grad is not None for p in branch.parameters())


@pytest.mark.parametrize(("modalities", "missing"), [("v", "a"), ("a", "v")])
def test_single_modality_model_has_no_other_branch(modalities: str, missing: str) -> None:
    torch.manual_seed(0)
    model = tiny_model(modalities)
    other = "audio" if missing == "a" else "visual"
    assert getattr(model, other) is None
    assert not any(
        name.startswith(other) or name.startswith(f"head_{missing}") for name, _ in model.named_parameters()
    )
    video = torch.randn(2, 1, 3, 48, 48) if modalities == "v" else None
    audio = torch.randn(2, 1, 32, 20) if modalities == "a" else None
    out = model(video, audio)
    assert f"logits_{missing}" not in out and f"prob_{missing}" not in out
    assert torch.equal(out["prob"], out[f"prob_{modalities}"])


def test_gcsa_switch_changes_the_network() -> None:
    with_gcsa = RHCNN(TINY_V)
    without = RHCNN(replace(TINY_V, gcsa=False))
    assert isinstance(without.attention, torch.nn.Identity)
    assert sum(p.numel() for p in with_gcsa.parameters()) > sum(p.numel() for p in without.parameters())
    assert without(torch.randn(1, 1, 3, 48, 48)).shape == (1, 16)


def test_test_flip_averages_a_frame_and_its_mirror_outside_training() -> None:
    torch.manual_seed(0)
    net = RHCNN(replace(TINY_V, test_flip=True)).eval()
    plain = RHCNN(replace(TINY_V, test_flip=False)).eval()
    plain.load_state_dict(net.state_dict())
    video = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        both = (plain(video) + plain(video.flip(-1))) / 2
        assert torch.allclose(net(video), both, atol=1e-5)
        assert torch.allclose(net(video), net(video.flip(-1)), atol=1e-5)  # mirror-invariant
        assert not torch.allclose(plain(video), plain(video.flip(-1)), atol=1e-3)
    net.train()  # training sees each frame once, as given
    torch.manual_seed(1)
    a = net(video)
    plain.train()
    torch.manual_seed(1)
    assert torch.allclose(a, plain(video), atol=1e-5)


def _skip_only(block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return channel_shuffle(torch.relu(block.skip(x)), block.shuffle_groups)


def test_zero_init_residual_starts_every_block_as_its_skip_path() -> None:
    torch.manual_seed(0)
    net = RHCNN(replace(TINY_V, zero_init_residual=True)).eval()
    default = RHCNN(TINY_V).eval()
    x = torch.randn(2, TINY_V.stem_widths[1], 16, 16)
    with torch.no_grad():
        for block, other in zip(net.blocks, default.blocks):
            assert torch.equal(block(x), _skip_only(block, x))
            assert not torch.allclose(other(x), _skip_only(other, x))
            x = block(x)


def test_gcsa_kernel_sets_the_attentions_spatial_convs() -> None:
    small = RHCNN(replace(TINY_V, gcsa_kernel=3))
    paper = RHCNN(TINY_V)
    assert small.attention.spatial[0].kernel_size == (3, 3)
    assert paper.attention.spatial[0].kernel_size == (7, 7)
    count = sum(p.numel() for p in small.attention.parameters())
    assert count < sum(p.numel() for p in paper.attention.parameters()) / 2
    assert small(torch.randn(2, 1, 3, 32, 32)).shape == paper(torch.randn(2, 1, 3, 32, 32)).shape
    with pytest.raises(ValueError, match="gcsa_kernel"):
        replace(TINY_V, gcsa_kernel=4)
