"""Procedural voices: speech-like syllable trains whose prosody depends on the expressed class.

A speaker has a pitch level and a vocal-tract length; a class shifts pitch level and range, tempo,
loudness, jitter/tremor and spectral tilt. The table is chosen so that hearing and seeing disagree about
what is confusable: fear and surprise (alike to the eye) differ by ear in tempo, tremor and range; anger
and disgust (alike to the eye) differ in loudness and brightness; while happiness~surprise and
sadness~disgust sound alike but look different. Fusion therefore has something to add.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from expr_common.labels import ANGER, DISGUST, FEAR, HAPPINESS, NEUTRAL, OTHER, SADNESS, SURPRISE


@dataclass(frozen=True)
class Prosody:
    pitch: float  # multiplies the speaker's f0
    range_st: float  # pitch excursion within a syllable, semitones
    rate: float  # syllables per second
    gain_db: float  # loudness relative to neutral
    jitter: float  # random f0 perturbation, fraction
    tremor: float  # 5-8 Hz f0 modulation depth, fraction
    tilt_db: float  # spectral tilt, dB per octave (less negative = brighter, pressed voice)
    rising: float  # 0..1 tendency of syllables to rise (questions, surprise)


PROSODY: dict[int, Prosody] = {
    NEUTRAL: Prosody(1.00, 2.0, 4.0, 0.0, 0.005, 0.0, -12.0, 0.3),
    ANGER: Prosody(1.12, 4.0, 5.0, 8.0, 0.015, 0.0, -6.0, 0.2),
    DISGUST: Prosody(0.90, 3.0, 2.8, -4.0, 0.01, 0.0, -15.0, 0.2),
    FEAR: Prosody(1.32, 2.5, 6.2, 1.0, 0.035, 0.06, -10.0, 0.4),
    HAPPINESS: Prosody(1.25, 8.0, 4.7, 4.0, 0.008, 0.0, -9.0, 0.6),
    SADNESS: Prosody(0.88, 1.5, 2.6, -6.0, 0.012, 0.01, -16.0, 0.1),
    SURPRISE: Prosody(1.35, 9.0, 4.4, 4.0, 0.008, 0.0, -9.0, 0.9),
    OTHER: Prosody(1.05, 4.5, 3.6, 1.0, 0.01, 0.0, -11.0, 0.5),
}

# (F1, F2, F3) in Hz of a few vowels for an adult vocal tract of length factor 1.
_VOWELS = np.array(
    [[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]]
)


@dataclass(frozen=True)
class Speaker:
    f0: float  # Hz
    tract: float  # formant scale (shorter tract -> higher formants)
    breath: float  # aspiration noise level


def sample_speaker(rng: np.random.Generator, is_female: bool) -> Speaker:
    f0 = rng.uniform(175, 240) if is_female else rng.uniform(95, 140)
    tract = rng.uniform(1.08, 1.18) if is_female else rng.uniform(0.92, 1.03)
    return Speaker(f0=float(f0), tract=float(tract), breath=float(rng.uniform(0.01, 0.04)))


def blend_prosody(label: int, intensity: float) -> Prosody:
    """Prosody of ``label`` at ``intensity``: a weak expression sounds closer to neutral."""
    base, target = PROSODY[NEUTRAL], PROSODY[label]
    k = float(np.clip(intensity, 0.0, 1.0))
    mix = {
        name: getattr(base, name) + k * (getattr(target, name) - getattr(base, name))
        for name in base.__dataclass_fields__
    }
    return Prosody(**mix)


def speak(
    duration_s: float,
    sample_rate: int,
    speaker: Speaker,
    labels: np.ndarray,
    intensities: np.ndarray,
    rng: np.random.Generator,
    speech_fraction: float = 0.8,
) -> tuple[np.ndarray, np.ndarray]:
    """A voice track of ``duration_s`` seconds whose prosody follows a per-frame class track
    (``labels``/``intensities`` sampled uniformly over the duration; ``-1`` speaks neutrally).
    Returns the waveform (float32, peak <= 1) and the syllable envelope per frame of the class track
    (0..1, for lip-sync of the jaw)."""
    n = int(round(duration_s * sample_rate))
    out = np.zeros(n, np.float32)
    syllable_env = np.zeros(n, np.float32)
    frames = len(labels)
    t = 0.0
    phase = 0.0
    while t < duration_s:
        frame = min(frames - 1, int(t / duration_s * frames))
        label = int(labels[frame]) if labels[frame] >= 0 else NEUTRAL
        pros = blend_prosody(label, float(intensities[frame]))
        if rng.random() > speech_fraction:  # a pause
            t += rng.uniform(0.15, 0.5)
            continue
        dur = float(np.clip(rng.normal(1.0 / pros.rate, 0.25 / pros.rate), 0.06, 0.6))
        start, stop = int(t * sample_rate), min(n, int((t + dur) * sample_rate))
        if stop - start < 16:
            break
        seg, env = _syllable(stop - start, sample_rate, speaker, pros, rng, phase)
        phase += 2 * np.pi * speaker.f0 * pros.pitch * (stop - start) / sample_rate
        out[start:stop] += seg
        syllable_env[start:stop] = np.maximum(syllable_env[start:stop], env)
        t += dur + rng.uniform(0.0, 0.06)
    out += speaker.breath * 0.3 * rng.standard_normal(n).astype(np.float32)
    peak = np.abs(out).max()
    if peak > 1.0:
        out /= peak
    edges = np.linspace(0, n, frames + 1).astype(int)
    per_frame = np.array([syllable_env[a:b].mean() if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:])])
    return out, (per_frame / max(per_frame.max(), 1e-6)).astype(np.float32)


def _syllable(
    n: int, sr: int, speaker: Speaker, pros: Prosody, rng: np.random.Generator, phase0: float
) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(n) / sr
    u = t / max(t[-1], 1e-6)
    direction = 1.0 if rng.random() < pros.rising else -1.0
    contour = direction * (u - 0.5) * pros.range_st + rng.normal(0, 0.5)
    f0 = speaker.f0 * pros.pitch * 2.0 ** (contour / 12.0)
    jitter = np.interp(
        np.arange(n), np.linspace(0, n, max(2, n // 80)), rng.normal(0, pros.jitter, max(2, n // 80))
    )
    f0 = f0 * (1 + jitter + pros.tremor * np.sin(2 * np.pi * rng.uniform(5.5, 8.0) * t))
    phase = phase0 + 2 * np.pi * np.cumsum(f0) / sr
    formants = _VOWELS[rng.integers(len(_VOWELS))] * speaker.tract
    bandwidths = np.array([90.0, 110.0, 170.0])
    n_harm = int(min(40, (sr / 2 - 200) // (speaker.f0 * pros.pitch * 1.3)))
    wave = np.zeros(n, np.float64)
    slope = pros.tilt_db / 20.0 / np.log10(2.0)  # amplitude exponent per harmonic number
    for k in range(1, n_harm + 1):
        fk = k * f0
        gain = sum(1.0 / (1.0 + ((fk - F) / B) ** 2) for F, B in zip(formants, bandwidths)) + 0.02
        wave += (k**slope) * gain * np.sin(k * phase)
    attack = max(1, int(0.02 * sr))
    env = np.minimum(1.0, np.minimum(np.arange(n) / attack, (n - np.arange(n)) / attack))
    env = env * np.hanning(n) ** 0.3
    level = 10 ** (pros.gain_db / 20.0) * 0.12
    noise = rng.standard_normal(n) * speaker.breath * (1.0 + 2 * pros.jitter * 10)
    seg = (wave / max(np.abs(wave).max(), 1e-6) + noise) * env * level
    return seg.astype(np.float32), env.astype(np.float32)
