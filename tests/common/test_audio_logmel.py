"""Log-mel windows: fixed shape, the window under the frames, frequency masking, decoding problems."""

from __future__ import annotations

import math

import numpy as np
import torch

from expr_common.data.audio import (
    LOG_EPS,
    FrequencyMask,
    cut_window,
    load_wave,
    log_mel,
    silent_log_mel,
    window_log_mel,
)
from expr_common.data.config import PreprocessConfig
from expr_common.media import write_video


def test_log_mel_has_a_fixed_shape_per_window():
    cfg = PreprocessConfig(window_seconds=1.0, n_mels=64, win_ms=25, hop_ms=10)
    assert (cfg.n_fft, cfg.hop_length, cfg.mel_steps) == (400, 160, 101)
    for seconds in (0.3, 1.0, 4.0):  # short clips are padded, long ones cropped
        wave = np.random.default_rng(0).standard_normal(int(seconds * 16000)).astype(np.float32) * 0.1
        spec = window_log_mel(wave, cfg, None, None)
        assert spec.shape == (1, 64, 101) and spec.dtype == torch.float32
    assert silent_log_mel(cfg).shape == (1, 64, 101)


def test_the_window_is_centred_on_the_frames_time_span():
    sr = 100
    wave = np.arange(1000, dtype=np.float32)  # 10 s at 100 Hz: each sample holds its own index
    window = cut_window(wave, sr, centre_s=2.0, length=100)  # 1 s around 2 s: samples 150..249
    assert window[0] == 150 and window[-1] == 249
    padded = cut_window(wave, sr, centre_s=0.2, length=100)  # starts before the recording: zeros first
    assert (padded[:30] == 0).all() and padded[30] == 0 and padded[31] == 1 and padded[-1] == 69
    assert cut_window(wave, sr, None, 10)[0] == 495  # no time base: the middle of the recording


def test_window_log_mel_uses_the_frames_span_and_fps():
    cfg = PreprocessConfig(window_seconds=0.5, n_mels=32)
    sr = cfg.sample_rate
    t = np.arange(4 * sr) / sr
    wave = np.where(t < 2.0, 0.0, np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # silent, then a tone
    quiet = window_log_mel(wave, cfg, (0, 10), fps=10.0)  # frames 0-9: 0.0-1.0 s
    loud = window_log_mel(wave, cfg, (25, 35), fps=10.0)  # frames 25-34: 2.5-3.5 s
    assert torch.allclose(quiet, torch.full_like(quiet, float(np.log(LOG_EPS))), atol=1e-3)
    assert loud.max() > quiet.max() + 10


def test_frequency_mask_masks_whole_bands_with_the_mean():
    torch.manual_seed(0)
    spec = torch.randn(16, 1, 64, 50) * 3 + 5
    masked = FrequencyMask(max_bands=20, count=1)(spec.clone())
    changed = (masked != spec).any(dim=-1)  # [B, 1, F]: which bands changed
    assert changed.any()
    for b in range(16):
        bands = changed[b, 0].nonzero().squeeze(1)
        if len(bands):
            assert (bands.diff() == 1).all()  # one contiguous band
            assert torch.allclose(masked[b, 0, bands], spec[b].mean().expand(len(bands), 50), atol=1e-4)
    assert len({tuple(changed[b, 0].nonzero().squeeze(1).tolist()) for b in range(16)}) > 1  # per sample
    single = FrequencyMask(max_bands=20)(spec[0].clone())
    assert single.shape == (1, 64, 50)


def test_load_wave_resamples_and_reports_missing_sound(tmp_path):
    frames = np.zeros((4, 16, 16, 3), np.uint8)
    with_sound = write_video(tmp_path / "a.avi", frames, 8.0, np.zeros(11025, np.float32), sample_rate=22050)
    silent = write_video(tmp_path / "b.avi", frames, 8.0, audio=None)
    wave, problem = load_wave(with_sound, 16000)
    assert problem is None and abs(len(wave) - 8000) < 1200  # 0.5 s at 16 kHz (codec padding allowed)
    assert load_wave(silent, 16000) == (None, "no audio track")
    (tmp_path / "c.wav").write_bytes(b"RIFF garbage")
    assert load_wave(tmp_path / "c.wav", 16000) == (None, "unreadable audio")
    assert load_wave(None, 16000) == (None, None)


def test_log_mel_rejects_a_window_of_the_wrong_length():
    cfg = PreprocessConfig(window_seconds=1.0)
    try:
        log_mel(np.zeros(100, np.float32), cfg)
    except ValueError as exc:
        assert "16000" in str(exc)
    else:
        raise AssertionError("a short window must be refused")


def test_spec_augment_time_masks_gain_and_shift():
    from expr_common.data.audio import SpecAugment

    torch.manual_seed(0)
    spec = torch.randn(6, 1, 16, 40)
    assert not SpecAugment(0, 0).active and torch.equal(SpecAugment(0, 0)(spec), spec)
    masked = SpecAugment(0, 0, time_mask_param=10, time_masks=2)(spec)
    for x, y in zip(spec, masked):
        changed = (x != y).any(dim=-2)[0]  # [T]: whole columns only, each set to the sample's mean
        assert changed.any() and changed.sum() <= 20
        assert torch.allclose(y[..., changed], x.mean().expand_as(y[..., changed]))
    loud = SpecAugment(0, 0, gain_db=6.0)(spec)
    offset = (loud - spec).flatten(1)
    assert torch.allclose(offset, offset[:, :1].expand_as(offset), atol=1e-6)  # one offset per sample
    assert offset.abs().max() <= 6.0 * math.log(10) / 10 + 1e-6 and offset[:, 0].std() > 0
    shifted = SpecAugment(0, 0, shift_steps=5)(spec)
    assert all(any(torch.equal(torch.roll(x, s, -1), y) for s in range(-5, 6)) for x, y in zip(spec, shifted))
    assert SpecAugment(0, 0, shift_steps=5)(spec[0]).shape == spec[0].shape  # one sample [1, F, T]
