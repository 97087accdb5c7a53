"""Mixup (recognizer/mixup.py): blends samples only with partners of the same modalities, and the training
step's loss is the same blend of the two labels' losses."""

from __future__ import annotations

import torch

from recognizer.mixup import mix_batch


def test_mix_batch_blends_partners_of_the_same_modalities():
    torch.manual_seed(0)
    video, audio = torch.randn(8, 2, 3, 4, 4), torch.randn(8, 1, 5, 6)
    has_video = torch.tensor([True] * 8)
    has_audio = torch.tensor([True, True, True, True, False, False, False, False])
    mixed_v, mixed_a, partner, lam = mix_batch(video, audio, has_video, has_audio, alpha=0.4)
    assert sorted(partner.tolist()) == list(range(8))
    same = has_audio == has_audio[partner]
    assert torch.all(lam[~same] == 1) and len(set(lam[same].tolist())) == 1  # one draw per batch
    for i in range(8):
        expect = lam[i] * video[i] + (1 - lam[i]) * video[partner[i]]
        assert torch.allclose(mixed_v[i], expect, atol=1e-6)
        assert torch.allclose(mixed_a[i], lam[i] * audio[i] + (1 - lam[i]) * audio[partner[i]], atol=1e-6)
    if not same.any():  # the seed above pairs some: the check below must not pass vacuously
        raise AssertionError("no sample had a partner of its own modalities")
    assert 0 < float(lam[same][0]) < 1


def test_a_tiny_run_trains_with_mixup_smoothing_and_test_flip(tiny_corpus, tmp_path):
    from expr_common.paths import repo_root
    from expr_common.runs import read_metrics
    from recognizer.cli import main

    config = str(repo_root() / "configs" / "recognizer" / "tiny.yaml")
    sets = ["train.mixup=0.4", "loss.label_smoothing=0.1", "model.visual.test_flip=true", "train.epochs=1"]
    sets.append(f"data_overrides=[cache.root={tmp_path / 'cache'}]")
    argv = ["train", "--config", config, "--run-dir", str(tmp_path / "run")]
    assert main([*argv, *[item for s in sets for item in ("--set", s)]]) == 0
    epochs = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "train_loss" in r]
    assert len(epochs) == 1 and epochs[0]["skipped_nonfinite"] == 0 and epochs[0]["train_loss"] > 0
