"""Modality dropout: the mask draw, its config check, and that training (only) hides a modality."""

import pytest
import torch

from expr_common.paths import repo_root
from recognizer.modality_dropout import drop_modalities
from recognizer.run_config import TrainConfig

TINY_CONFIG = str(repo_root() / "configs" / "recognizer" / "tiny.yaml")


def _masks(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    # a quarter each: both, audio only, video only, neither
    idx = torch.arange(n) % 4
    return (idx == 0) | (idx == 1), (idx == 0) | (idx == 2)


def test_zero_keeps_masks_and_draws_nothing():
    has_a, has_v = _masks(12)
    before = torch.get_rng_state()
    a, v = drop_modalities(has_a, has_v, 0.0)
    assert torch.equal(a, has_a) and torch.equal(v, has_v)
    assert torch.equal(torch.get_rng_state(), before)  # runs without dropout stay bit-identical


def test_one_drops_exactly_one_modality_of_every_full_sample():
    has_a, has_v = _masks(4000)
    a, v = drop_modalities(has_a, has_v, 1.0, torch.Generator().manual_seed(0))
    both = has_a & has_v
    assert not (a & v).any()  # nothing keeps both
    assert torch.equal((a | v)[both], torch.ones(int(both.sum()), dtype=torch.bool))  # never both lost
    single = ~both
    assert torch.equal(a[single], has_a[single]) and torch.equal(v[single], has_v[single])
    share_video_dropped = float((~v[both]).float().mean())
    assert 0.45 < share_video_dropped < 0.55


def test_rate_and_determinism():
    has_a, has_v = torch.ones(20000, dtype=torch.bool), torch.ones(20000, dtype=torch.bool)
    a1, v1 = drop_modalities(has_a, has_v, 0.3, torch.Generator().manual_seed(3))
    a2, v2 = drop_modalities(has_a, has_v, 0.3, torch.Generator().manual_seed(3))
    assert torch.equal(a1, a2) and torch.equal(v1, v2)
    dropped = float((~(a1 & v1)).float().mean())
    assert 0.28 < dropped < 0.32


def test_bad_rate_is_refused():
    has_a, has_v = _masks(4)
    with pytest.raises(ValueError, match="modality dropout"):
        drop_modalities(has_a, has_v, 1.5)
    with pytest.raises(ValueError, match="train.modality_dropout"):
        TrainConfig(modality_dropout=-0.1)


def test_training_hides_a_modality_and_evaluation_never_does(recognizer_cache_root, tmp_path, monkeypatch):
    from recognizer.cli import main
    from recognizer.model import AudioVisualRecognizer

    seen = []  # (training?, has_video & has_audio) per forward call
    forward = AudioVisualRecognizer.forward

    def spy(self, video=None, audio=None, has_video=None, has_audio=None):
        both = torch.ones(1, dtype=torch.bool) if has_video is None else has_video.bool() & has_audio.bool()
        seen.append((self.training, both.clone()))
        return forward(self, video, audio, has_video, has_audio)

    monkeypatch.setattr(AudioVisualRecognizer, "forward", spy)
    sets = [
        f"data_overrides=[cache.root={recognizer_cache_root}]",
        "train.epochs=1",
        "train.max_steps_per_epoch=3",
    ]
    argv = ["train", "--config", TINY_CONFIG, "--run-dir", str(tmp_path / "run")]
    assert main([*argv, *[a for s in [*sets, "train.modality_dropout=1.0"] for a in ("--set", s)]]) == 0
    train_calls = [both for training, both in seen if training]
    eval_calls = [both for training, both in seen if not training]
    assert len(train_calls) == 3 and not any(both.any() for both in train_calls)
    assert any(both.any() for both in eval_calls)  # the tiny corpus has V+A windows, and they stay whole
