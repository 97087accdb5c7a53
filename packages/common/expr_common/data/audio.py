"""Audio of a sample: the window of sound under its frames, as a fixed-size log-mel spectrogram.

Decoding (mono, resampled) is :func:`expr_common.media.read_audio`; torchaudio only transforms.
Every window has the same number of samples (``window_seconds``), centred on its frames' time span, so
every log-mel is ``[1, n_mels, T]`` with the same T and no resizing is ever needed.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torchaudio
from einops import rearrange

from expr_common.data.config import PreprocessConfig
from expr_common.media import MediaError, read_audio

LOG_EPS = 1e-6  # floor of the log: digital silence (and zero padding) maps to log(1e-6) = -13.8


def load_wave(path: Path | None, sample_rate: int) -> tuple[np.ndarray | None, str | None]:
    """(mono waveform at ``sample_rate`` or None, the reason it is None). A file without a sound track or
    with one that cannot be decoded gives no audio; the sample is kept with ``has_audio=False``."""
    if path is None:
        return None, None
    try:
        wave = read_audio(path, sample_rate)
    except MediaError as exc:
        return None, "no audio track" if "no audio stream" in str(exc) else "unreadable audio"
    if not len(wave):
        return None, "empty audio track"
    if not np.isfinite(wave).all():  # a broken float wav: one NaN makes every log-mel (and loss) NaN
        return None, "non-finite audio samples"
    return wave, None


def cut_window(wave: np.ndarray, sample_rate: int, centre_s: float | None, length: int) -> np.ndarray:
    """``length`` samples centred at ``centre_s`` seconds (the middle of ``wave`` when None); what lies
    outside the recording is zeros, so short clips are padded and long ones cropped around their centre."""
    centre = len(wave) / 2 if centre_s is None else centre_s * sample_rate
    start = int(round(centre - length / 2))
    out = np.zeros(length, dtype=np.float32)
    lo, hi = max(0, start), min(len(wave), start + length)
    if hi > lo:
        out[lo - start : hi - start] = wave[lo:hi]
    return out


@functools.lru_cache(maxsize=4)
def _mel(sample_rate: int, n_fft: int, hop_length: int, n_mels: int) -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate,
        n_fft=n_fft,
        win_length=n_fft,
        hop_length=hop_length,
        n_mels=n_mels,
        power=2.0,
    )


def log_mel(wave: np.ndarray, config: PreprocessConfig) -> torch.Tensor:
    """float32 ``[1, n_mels, T]`` natural-log mel power of a window of ``config.window_samples`` samples."""
    if len(wave) != config.window_samples:
        raise ValueError(f"expected a window of {config.window_samples} samples, got {len(wave)}")
    mel = _mel(config.sample_rate, config.n_fft, config.hop_length, config.n_mels)
    with torch.no_grad():
        power = mel(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)))  # [F, T]
    return rearrange(torch.log(power + LOG_EPS), "f t -> 1 f t")


def silent_log_mel(config: PreprocessConfig) -> torch.Tensor:
    """What a sample without audio carries: zeros (models ignore it through ``has_audio``)."""
    return torch.zeros(1, config.n_mels, config.mel_steps)


def window_log_mel(
    wave: np.ndarray, config: PreprocessConfig, span: tuple[int, int] | None, fps: float | None
) -> torch.Tensor:
    """The log-mel of the window under frames ``[start, stop)`` at ``fps`` (the whole recording's middle
    when the frames have no time base: images, audio-only samples)."""
    centre = None if span is None or not fps else (span[0] + span[1]) / 2 / fps
    return log_mel(cut_window(wave, config.sample_rate, centre, config.window_samples), config)


class FrequencyMask(torch.nn.Module):
    """Training-time SpecAugment frequency masking with torchaudio's ``FrequencyMasking``: ``count`` masks
    of up to ``max_bands`` mel bands, each sample of a ``[B, 1, F, T]`` batch masked independently.
    Masked bands take the spectrogram's own mean: the log-mel is not normalised, so 0 would be a loud band."""

    def __init__(self, max_bands: int = 8, count: int = 1):
        super().__init__()
        self.count = count
        self.mask = torchaudio.transforms.FrequencyMasking(freq_mask_param=max_bands, iid_masks=True)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:  # [1, F, T] or [B, 1, F, T]
        # torchaudio draws the bands on a [..., F, 1] map of ones (cheap: no time axis); unmasked values
        # are then kept bit for bit and masked bands take the sample's mean.
        keep = torch.ones(*spec.shape[:-1], 1, dtype=spec.dtype)
        for _ in range(self.count):
            keep = self.mask(keep)
        return torch.where(keep > 0, spec, spec.mean(dim=(-2, -1), keepdim=True))


class SpecAugment(torch.nn.Module):
    """Training-time augmentation of log-mels ``[1, F, T]`` or ``[B, 1, F, T]``, each sample drawn on its
    own: SpecAugment's frequency masks (:class:`FrequencyMask`) and time masks (torchaudio's
    ``TimeMasking``; masked steps take the sample's mean), a random gain of up to ``gain_db`` either way
    (an offset of the natural-log power) and a circular time shift of up to ``shift_steps`` either way."""

    def __init__(
        self,
        freq_mask_param: int = 8,
        freq_masks: int = 1,
        time_mask_param: int = 0,
        time_masks: int = 0,
        gain_db: float = 0.0,
        shift_steps: int = 0,
    ):
        super().__init__()
        use_freq = freq_masks > 0 and freq_mask_param > 0
        self.freq = FrequencyMask(freq_mask_param, freq_masks) if use_freq else None
        use_time = time_masks > 0 and time_mask_param > 0
        self.time = torchaudio.transforms.TimeMasking(time_mask_param, iid_masks=True) if use_time else None
        self.time_masks = time_masks
        self.gain = gain_db * float(np.log(10.0)) / 10.0  # dB of power -> natural-log units
        self.shift_steps = shift_steps

    @property
    def active(self) -> bool:
        return self.freq is not None or self.time is not None or self.gain > 0 or self.shift_steps > 0

    def forward(self, spec: torch.Tensor) -> torch.Tensor:  # [1, F, T] or [B, 1, F, T]
        lead = spec.shape[:-3]  # () for one sample, (B,) for a batch
        if self.shift_steps > 0:
            shifts = torch.randint(-self.shift_steps, self.shift_steps + 1, lead or (1,)).tolist()
            rows = spec.reshape(-1, *spec.shape[-3:])
            spec = torch.stack([torch.roll(x, s, dims=-1) for x, s in zip(rows, shifts)]).reshape(spec.shape)
        if self.gain > 0:
            spec = spec + (torch.rand(*lead, 1, 1, 1) * 2 - 1) * self.gain
        if self.freq is not None:
            spec = self.freq(spec)
        if self.time is not None:
            keep = torch.ones(*spec.shape[:-2], 1, spec.shape[-1], dtype=spec.dtype)
            for _ in range(self.time_masks):
                keep = self.time(keep)
            spec = torch.where(keep > 0, spec, spec.mean(dim=(-2, -1), keepdim=True))
        return spec
