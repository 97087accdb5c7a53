"""Domain styles: how CK+ (studio), AFEW (movie) and Aff-Wild2 (in the wild) look, and the shared
compositing of a rendered face into a whole frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from expr_common.synth.face import Identity, Pose, render_face


@dataclass(frozen=True)
class DomainStyle:
    name: str
    grayscale: bool
    intensity: tuple[float, float]  # apex intensity range: posed lab (strong) .. spontaneous (weak)
    yaw_sd: float
    pitch_sd: float
    roll_sd: float
    light_strength: tuple[float, float]
    blur: tuple[float, float]  # gaussian sigma in pixels of the written image
    noise: float
    lowres_prob: float  # chance that a clip is shot at low resolution and upscaled
    jpeg_quality: tuple[int, int]


CKPLUS = DomainStyle(
    "ckplus", True, (0.8, 1.0), 0.03, 0.03, 0.02, (0.15, 0.25), (0.0, 0.3), 0.0, 0.0, (95, 95)
)
AFEW = DomainStyle("afew", False, (0.5, 0.9), 0.3, 0.12, 0.1, (0.35, 0.6), (0.0, 1.0), 0.02, 0.2, (85, 85))
AFFWILD2 = DomainStyle(
    "affwild2", False, (0.55, 0.95), 0.35, 0.15, 0.08, (0.2, 0.5), (0.0, 0.9), 0.03, 0.3, (55, 85)
)
STYLES = {style.name: style for style in (CKPLUS, AFEW, AFFWILD2)}


def background(kind: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A float ``[H, W, 3]`` background: flat studio, cluttered movie set, or varied in-the-wild room."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy /= max(height - 1, 1)
    xx /= max(width - 1, 1)
    if kind == "ckplus":
        base = rng.uniform(0.5, 0.68)
        img = np.full((height, width, 3), base, np.float32)
        img *= (1.0 - 0.12 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2))[..., None]
        return img
    c1, c2 = rng.uniform(0.05, 0.9, 3), rng.uniform(0.05, 0.9, 3)
    angle = rng.uniform(0, np.pi)
    ramp = np.clip(np.cos(angle) * xx + np.sin(angle) * yy, 0, 1)[..., None]
    img = (c1 * (1 - ramp) + c2 * ramp).astype(np.float32)
    shapes = rng.integers(4, 10) if kind == "afew" else rng.integers(2, 6)
    for _ in range(shapes):
        color = rng.uniform(0.0, 1.0, 3)
        x0, y0 = rng.uniform(-0.2, 1.0), rng.uniform(-0.2, 1.0)
        w, h = rng.uniform(0.08, 0.5), rng.uniform(0.08, 0.6)
        if rng.random() < 0.5:
            mask = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
        else:
            mask = ((xx - x0) / w) ** 2 + ((yy - y0) / h) ** 2 < 1
        img[mask] = img[mask] * 0.3 + color * 0.7
    sigma = (1.5 if kind == "afew" else 0.8) * max(height, width) / 160
    img = gaussian_filter(img, sigma=(sigma, sigma, 0))
    if kind == "afew":  # low-key movie lighting
        img *= rng.uniform(0.35, 0.75)
    return np.clip(img, 0, 1).astype(np.float32)


def sample_pose(style: DomainStyle, rng: np.random.Generator) -> Pose:
    return Pose(
        yaw=float(rng.normal(0, style.yaw_sd)),
        pitch=float(rng.normal(0, style.pitch_sd)),
        roll=float(rng.normal(0, style.roll_sd)),
        gaze_x=float(rng.normal(0, 0.3)),
        gaze_y=float(rng.normal(0, 0.3)),
    )


def draw_face(
    frame: np.ndarray,
    box: tuple[int, int, int],
    identity: Identity,
    aus: np.ndarray,
    pose: Pose,
    render_size: int,
    light: tuple[float, float],
    light_strength: float,
) -> np.ndarray:
    """Render a face at ``render_size`` over the frame's patch under ``box = (x0, y0, side)``, scale it to
    the box and paste it back. Returns the rendered patch (the aligned face crop at ``render_size``)."""
    x0, y0, side = box
    patch = frame[y0 : y0 + side, x0 : x0 + side]
    small = _resize(patch, render_size) if side != render_size else patch
    face, _ = render_face(
        identity, aus, pose, render_size, background=small, light=light, light_strength=light_strength
    )
    frame[y0 : y0 + side, x0 : x0 + side] = _resize(face, side) if side != render_size else face
    return face


def degrade(
    img: np.ndarray,
    style: DomainStyle,
    rng: np.random.Generator,
    blur: float,
    lowres: float,
    grade: np.ndarray | None,
) -> np.ndarray:
    """Camera and compression-chain effects on a float image: colour grade, low resolution, blur, noise,
    grayscale."""
    out = img
    if grade is not None:
        out = np.clip(out @ grade.T, 0, 1)
    if lowres > 1.0:
        h, w = out.shape[:2]
        small = _resize(out, max(8, int(w / lowres)), max(8, int(h / lowres)))
        out = _resize(small, w, h)
    if blur > 0:
        out = gaussian_filter(out, sigma=(blur, blur, 0))
    if style.grayscale:
        out = (out @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    if style.noise > 0:
        out = out + rng.standard_normal(out.shape, dtype=np.float32) * np.float32(style.noise)
    out = np.clip(out, 0, 1).astype(np.float32, copy=False)
    return np.repeat(out, 3, axis=-1) if style.grayscale else out


def colour_grade(rng: np.random.Generator, strength: float) -> np.ndarray:
    """A 3x3 colour matrix: warm/teal casts and saturation changes as in graded film or cheap webcams."""
    tint = np.diag(1.0 + rng.normal(0, 0.08 * strength, 3))
    sat = rng.uniform(1 - 0.4 * strength, 1 + 0.2 * strength)
    gray = np.full((3, 3), 1 / 3)
    return (tint @ (sat * np.eye(3) + (1 - sat) * gray)).astype(np.float32)


def to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _resize(img: np.ndarray, width: int, height: int | None = None) -> np.ndarray:
    height = width if height is None else height
    pil = Image.fromarray(to_uint8(img))
    return np.asarray(pil.resize((width, height), Image.BILINEAR), np.float32) / 255.0
