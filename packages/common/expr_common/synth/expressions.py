"""Expression parameters per class, with overlap, and their onset-apex-offset dynamics.

Class prototypes follow the FACS descriptions of the basic emotions. Overlap is deliberate and
life-like: fear shares the raised brows, wide eyes and open jaw of surprise; anger and disgust share the
lowered brow and tightened lids; "Other" is a sparse, low-intensity mix that sits close to neutral.
"""

from __future__ import annotations

import numpy as np

from expr_common.labels import ANGER, DISGUST, FEAR, HAPPINESS, NEUTRAL, NUM_CLASSES, OTHER, SADNESS, SURPRISE
from expr_common.synth.face import AU, NUM_AUS, Pose


def _proto(**values: float) -> np.ndarray:
    vec = np.zeros(NUM_AUS, np.float32)
    for name, value in values.items():
        vec[AU[name]] = value
    return vec


PROTOTYPES: dict[int, np.ndarray] = {
    NEUTRAL: _proto(),
    ANGER: _proto(brow_lower=1.0, lid_tighten=0.8, lid_raise=0.3, lip_tighten=0.9, nose_wrinkle=0.15),
    DISGUST: _proto(
        nose_wrinkle=1.0, upper_lip_raise=0.9, brow_lower=0.55, lid_tighten=0.4, lip_corner_depress=0.4
    ),
    FEAR: _proto(
        brow_inner_raise=1.0,
        brow_outer_raise=0.5,
        brow_lower=0.5,
        lid_raise=0.9,
        lip_stretch=1.0,
        jaw_drop=0.45,
    ),
    HAPPINESS: _proto(lip_corner_pull=1.0, cheek_raise=0.85, jaw_drop=0.2),
    SADNESS: _proto(brow_inner_raise=0.85, brow_lower=0.35, lip_corner_depress=1.0, lid_tighten=0.25),
    SURPRISE: _proto(brow_inner_raise=1.0, brow_outer_raise=1.0, lid_raise=1.0, jaw_drop=0.9),
    OTHER: _proto(),  # drawn from OTHER_VARIANTS
}

# "Other" in Aff-Wild2 is every expression outside the seven: contempt, pressed or pursed lips, squints,
# half smiles, doubt. Each sample draws one variant.
OTHER_VARIANTS: tuple[np.ndarray, ...] = (
    _proto(asym_corner=0.9, lip_tighten=0.3),  # contempt
    _proto(lip_tighten=0.8, brow_inner_raise=0.3),  # pressed lips, doubt
    _proto(lid_tighten=0.7, cheek_raise=0.3, lip_corner_pull=0.25),  # squint / polite half smile
    _proto(brow_outer_raise=0.6, asym_corner=0.4, lip_corner_depress=0.3),  # scepticism
    _proto(jaw_drop=0.35, lip_tighten=0.2, brow_lower=0.25),  # concentration, mouth ajar
)
CONTEMPT = OTHER_VARIANTS[0]


def sample_apex(label: int, intensity: float, rng: np.random.Generator, noise: float = 0.18) -> np.ndarray:
    """Expression parameters at the apex of an expression of ``label`` with the given intensity (0-1):
    the prototype scaled per unit with jitter, plus sparse nuisance units, clipped to [0, 1]."""
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"label {label} is not an ABAW class")
    proto = OTHER_VARIANTS[rng.integers(len(OTHER_VARIANTS))] if label == OTHER else PROTOTYPES[label]
    scaled = proto * intensity * rng.uniform(0.7, 1.2, NUM_AUS)
    nuisance = (rng.random(NUM_AUS) < 0.2) * np.abs(rng.normal(0, noise, NUM_AUS))
    return np.clip(scaled + nuisance + rng.normal(0, noise * 0.25, NUM_AUS), 0.0, 1.0).astype(np.float32)


def contempt_apex(intensity: float, rng: np.random.Generator) -> np.ndarray:
    """CK+'s contempt (mapped to Other): a one-sided lip-corner raise."""
    scaled = CONTEMPT * intensity * rng.uniform(0.8, 1.15, NUM_AUS)
    return np.clip(scaled + np.abs(rng.normal(0, 0.04, NUM_AUS)), 0.0, 1.0).astype(np.float32)


def smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def envelope(n: int, onset: float, apex_end: float, offset_end: float) -> np.ndarray:
    """Expression strength over ``n`` frames: rises over [0, onset], holds until ``apex_end``, falls until
    ``offset_end`` (fractions of the clip); ``offset_end > 1`` means the clip ends before the offset does."""
    t = np.linspace(0.0, 1.0, n) if n > 1 else np.ones(1)
    rise = smoothstep(t / max(onset, 1e-6))
    fall = 1.0 - smoothstep((t - apex_end) / max(offset_end - apex_end, 1e-6))
    return (rise * fall).astype(np.float32)


def smooth_noise(n: int, rng: np.random.Generator, scale: float, smooth: int = 8) -> np.ndarray:
    """A slow random walk of ``n`` steps (head motion, drift), std about ``scale``."""
    raw = rng.normal(0.0, 1.0, n + 2 * smooth)
    kernel = np.hanning(2 * smooth + 1)
    kernel /= kernel.sum()
    walk = np.convolve(raw, kernel, mode="same")[smooth : smooth + n]
    # normalise by the filter's gain, not the sample std: a short clip must stay a short piece of a
    # long walk (dividing by the std of 8 samples would blow a slow drift up into a large offset)
    return (walk / np.sqrt((kernel**2).sum()) * scale).astype(np.float32)


def blinks(n: int, fps: float, rng: np.random.Generator, rate_hz: float = 0.3) -> np.ndarray:
    """Eyelid closure per frame: short blinks at random times."""
    closure = np.zeros(n, np.float32)
    t = 0.0
    duration = max(1, round(0.15 * fps))
    while True:
        t += rng.exponential(1.0 / rate_hz)
        start = int(t * fps)
        if start >= n:
            return closure
        closure[start : start + duration] = (
            np.hanning(duration + 2)[1:-1][: n - start] if duration > 1 else 1.0
        )


def animate(
    expression: np.ndarray,
    base_pose: Pose,
    fps: float,
    rng: np.random.Generator,
    motion: float,
    talking: np.ndarray | None = None,
) -> list[tuple[np.ndarray, Pose]]:
    """Per-frame (expression, pose) from an expression track ``[T, NUM_AUS]``: adds head motion (a slow
    random walk scaled by ``motion``), blinks, and jaw movement that follows the voice (``talking``)."""
    from dataclasses import replace

    n = len(expression)
    smooth = max(2, int(fps))
    yaw = smooth_noise(n, rng, 0.08 * motion, smooth)
    pitch = smooth_noise(n, rng, 0.05 * motion, smooth)
    roll = smooth_noise(n, rng, 0.04 * motion, smooth)
    tx = smooth_noise(n, rng, 0.03 * motion, smooth)
    ty = smooth_noise(n, rng, 0.02 * motion, smooth)
    closure = blinks(n, fps, rng)
    frames = []
    for i in range(n):
        aus = expression[i].copy()
        if talking is not None:
            aus[AU["jaw_drop"]] = min(1.0, aus[AU["jaw_drop"]] + 0.3 * float(talking[i]))
        pose = replace(
            base_pose,
            yaw=base_pose.yaw + float(yaw[i]),
            pitch=base_pose.pitch + float(pitch[i]),
            roll=base_pose.roll + float(roll[i]),
            tx=base_pose.tx + float(tx[i]),
            ty=base_pose.ty + float(ty[i]),
            blink=float(closure[i]),
        )
        frames.append((aus, pose))
    return frames
