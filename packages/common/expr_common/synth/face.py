"""Procedural faces: identity parameters + action-unit-like expression parameters + pose -> an image.

Faces are drawn with anti-aliased signed-distance shapes on a normalised canvas (x right, y down, both
in [-1, 1]), so the same face renders at any size and every parameter moves the image smoothly, which is
what onset-apex-offset dynamics and latent-walk-like clips need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Action-unit-like expression parameters, each in [0, 1]. The FACS unit each mimics is in the comment.
AU_NAMES: tuple[str, ...] = (
    "brow_inner_raise",  # AU1
    "brow_outer_raise",  # AU2
    "brow_lower",  # AU4
    "lid_raise",  # AU5
    "cheek_raise",  # AU6
    "lid_tighten",  # AU7
    "nose_wrinkle",  # AU9
    "upper_lip_raise",  # AU10
    "lip_corner_pull",  # AU12
    "lip_corner_depress",  # AU15
    "lip_stretch",  # AU20
    "lip_tighten",  # AU23/24
    "jaw_drop",  # AU25/26
    "asym_corner",  # AU14 on one side (contempt)
)
AU = {name: i for i, name in enumerate(AU_NAMES)}
NUM_AUS = len(AU_NAMES)


@dataclass(frozen=True)
class Identity:
    """Who the face is: fixed for a subject across all their clips."""

    face_w: float  # half-width of the head ellipse
    face_h: float  # half-height
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    hair_style: int  # 0 short, 1 long, 2 bald, 3 fringe
    eye_dx: float  # half distance between the eyes
    eye_y: float
    eye_size: float
    iris: tuple[float, float, float]
    brow_thick: float
    nose_len: float
    mouth_w: float
    lip: tuple[float, float, float]
    glasses: bool
    beard: float  # 0 none .. 1 full stubble shadow
    is_female: bool


@dataclass(frozen=True)
class Pose:
    yaw: float = 0.0  # radians, + turns the face to its left (features shift right in the image)
    pitch: float = 0.0  # radians, + tilts the face down
    roll: float = 0.0  # radians, in-plane rotation
    scale: float = 1.0
    tx: float = 0.0  # canvas units
    ty: float = 0.0
    gaze_x: float = 0.0  # -1..1
    gaze_y: float = 0.0
    blink: float = 0.0  # 0 open .. 1 closed


def sample_identity(rng: np.random.Generator) -> Identity:
    tone = rng.uniform(0.0, 1.0)
    # Skin tones from light to dark along a plausible curve, plus a small per-channel jitter.
    skin = np.array([0.93, 0.78, 0.66]) * (1 - tone) + np.array([0.42, 0.28, 0.2]) * tone
    skin = np.clip(skin + rng.normal(0, 0.02, 3), 0, 1)
    hair_palette = np.array(
        [
            [0.08, 0.06, 0.05],
            [0.25, 0.16, 0.09],
            [0.5, 0.35, 0.2],
            [0.75, 0.62, 0.4],
            [0.55, 0.55, 0.55],
            [0.45, 0.2, 0.1],
        ]
    )
    hair = hair_palette[rng.integers(len(hair_palette))] * rng.uniform(0.85, 1.1)
    is_female = bool(rng.random() < 0.5)
    iris_palette = np.array([[0.25, 0.15, 0.08], [0.2, 0.35, 0.55], [0.3, 0.45, 0.3], [0.12, 0.08, 0.05]])
    return Identity(
        face_w=float(rng.uniform(0.5, 0.62) * (0.96 if is_female else 1.0)),
        face_h=float(rng.uniform(0.68, 0.8)),
        skin=tuple(float(c) for c in skin),
        hair=tuple(float(c) for c in np.clip(hair, 0, 1)),
        hair_style=int(rng.choice(4, p=[0.3, 0.45, 0.1, 0.15] if is_female else [0.55, 0.1, 0.2, 0.15])),
        eye_dx=float(rng.uniform(0.2, 0.27)),
        eye_y=float(rng.uniform(-0.16, -0.08)),
        eye_size=float(rng.uniform(0.85, 1.15)),
        iris=tuple(float(c) for c in iris_palette[rng.integers(len(iris_palette))]),
        brow_thick=float(rng.uniform(0.016, 0.03) * (0.8 if is_female else 1.0)),
        nose_len=float(rng.uniform(0.22, 0.32)),
        mouth_w=float(rng.uniform(0.15, 0.21)),
        lip=tuple(
            float(c) for c in np.clip(skin * np.array([0.85, 0.55, 0.55]) + rng.normal(0, 0.03, 3), 0, 1)
        ),
        glasses=bool(rng.random() < 0.18),
        beard=float(0.0 if is_female or rng.random() < 0.7 else rng.uniform(0.3, 0.8)),
        is_female=is_female,
    )


class _Canvas:
    """An RGB image on normalised coordinates, painted with anti-aliased alpha masks."""

    def __init__(self, size: int, background: np.ndarray | None):
        self.size = size
        lin = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
        self.y, self.x = np.meshgrid(lin, lin, indexing="ij")
        self.px = 2.0 / size  # one pixel in canvas units
        if background is None:
            self.rgb = np.zeros((size, size, 3), np.float32)
        else:
            self.rgb = background.astype(np.float32, copy=True)
        self.alpha = np.zeros((size, size), np.float32)

    def coverage(self, sdf: np.ndarray, soft: float = 1.0) -> np.ndarray:
        return np.clip(0.5 - sdf / (self.px * soft), 0.0, 1.0)

    def paint(self, mask: np.ndarray, color, opacity: float = 1.0, track_alpha: bool = False) -> None:
        if opacity <= 0.0:  # most expression details are off most of the time
            return
        a = (mask * opacity)[..., None]
        self.rgb += (np.asarray(color, np.float32) - self.rgb) * a
        if track_alpha:
            self.alpha = np.maximum(self.alpha, mask * opacity)


def _ellipse_sdf(x, y, cx, cy, rx, ry):
    return (np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2) - 1.0) * min(rx, ry)


def _segment_sdf(x, y, ax, ay, bx, by, radius):
    px, py = x - ax, y - ay
    dx, dy = bx - ax, by - ay
    t = np.clip((px * dx + py * dy) / (dx * dx + dy * dy + 1e-9), 0.0, 1.0)
    return np.hypot(px - t * dx, py - t * dy) - radius


def render_face(
    identity: Identity,
    aus: np.ndarray,
    pose: Pose,
    size: int,
    background: np.ndarray | None = None,
    light: tuple[float, float] = (0.0, -0.3),
    light_strength: float = 0.35,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one face on ``background`` (float ``[S, S, 3]`` in [0, 1], or black). Returns the image
    (float32 ``[S, S, 3]``) and the face's alpha mask ``[S, S]`` (for compositing into larger frames)."""
    au = np.clip(np.asarray(aus, np.float32), 0.0, 1.0)
    g = {name: float(au[i]) for name, i in AU.items()}
    cv = _Canvas(size, background)
    ident = identity

    # Inverse pose: image coordinates -> face coordinates. Roll rotates, scale/translate move; yaw and
    # pitch shift each feature by its depth (nose most, outline least), a cheap perspective.
    cr, sr = np.cos(pose.roll), np.sin(pose.roll)
    xs = (cv.x - pose.tx) / pose.scale
    ys = (cv.y - pose.ty) / pose.scale
    x = cr * xs + sr * ys
    y = -sr * xs + cr * ys
    syaw, spitch = np.sin(pose.yaw), np.sin(pose.pitch)
    x = x / max(np.cos(pose.yaw), 0.5)

    def at(depth: float) -> tuple[np.ndarray, np.ndarray]:
        return x - depth * syaw * 1.1, y - depth * spitch * 0.8

    fw, fh = ident.face_w, ident.face_h
    jaw = g["jaw_drop"]

    # Hair behind the head (long styles) and neck.
    hx, hy = at(-0.1)
    if ident.hair_style == 1:
        cv.paint(
            cv.coverage(_ellipse_sdf(hx, hy, 0.0, 0.05, fw * 1.25, fh * 1.2)), ident.hair, track_alpha=True
        )
    nx, ny = at(-0.05)
    neck = np.maximum(np.abs(nx) - fw * 0.55, -(ny - fh * 0.5))
    skin = np.asarray(ident.skin, np.float32)
    # the neck fades out towards the bottom edge so a pasted face leaves no seam in a larger frame
    cv.paint(cv.coverage(neck) * np.clip((0.97 - cv.y) / 0.15, 0, 1), skin * 0.82, track_alpha=True)

    # Ears, head (the chin drops with the jaw).
    ex, ey = at(-0.05)
    cv.paint(
        cv.coverage(_ellipse_sdf(np.abs(ex), ey, fw * 0.97, -0.02, 0.08, 0.16)), skin * 0.9, track_alpha=True
    )
    fx, fy = at(0.0)
    ry = np.where(fy > 0, fh * (1.0 + 0.09 * jaw), fh)
    head_sdf = (np.sqrt((fx / fw) ** 2 + (fy / ry) ** 2) - 1.0) * fw
    head = cv.coverage(head_sdf)
    cv.paint(head, skin, track_alpha=True)
    if ident.beard > 0:
        beard = head * np.clip((fy - 0.2) / 0.15, 0, 1)
        cv.paint(beard, skin * 0.55, opacity=0.45 * ident.beard)

    # Shading from a pseudo-normal of the head ellipse: makes the face read as 3-D (and gives detectors
    # the light/dark structure real faces have).
    nzx = np.clip(fx / fw, -1, 1)
    nzy = np.clip(fy / ry, -1, 1)
    nz = np.sqrt(np.clip(1 - nzx**2 - nzy**2, 0, 1))
    lx, ly = light
    lz = np.sqrt(max(1e-3, 1 - lx * lx - ly * ly))
    diffuse = np.clip(nzx * lx + nzy * ly + nz * lz, 0, 1)
    shade = 1.0 - light_strength + light_strength * diffuse
    cv.rgb *= (1.0 - head + head * shade)[..., None]

    # Forehead lines (brow raise) and the frown furrow (brow lower).
    raise_ = 0.5 * (g["brow_inner_raise"] + g["brow_outer_raise"])
    wx, wy = at(0.05)
    if raise_ > 0:
        for k in range(3):
            yline = ident.eye_y - 0.27 - 0.055 * k
            line = np.abs(wy - yline - 0.04 * (wx / 0.2) ** 2) - 0.006
            line = np.maximum(line, np.abs(wx) - 0.17)
            cv.paint(cv.coverage(line, soft=1.5), skin * 0.6, opacity=0.8 * raise_)
    if g["brow_lower"] > 0:
        furrow = _segment_sdf(np.abs(wx), wy, 0.035, ident.eye_y - 0.16, 0.025, ident.eye_y - 0.06, 0.006)
        cv.paint(cv.coverage(furrow, soft=1.5), skin * 0.55, opacity=0.9 * g["brow_lower"])

    # Hair on top.
    if ident.hair_style != 2:
        hairline = -fh * (0.48 if ident.hair_style != 3 else 0.4) + 0.25 * (hx / fw) ** 2
        top = np.maximum(_ellipse_sdf(hx, hy, 0.0, -0.04, fw * 1.07, fh * 1.02), hy - hairline)
        cv.paint(cv.coverage(top, soft=1.5), ident.hair, track_alpha=True)

    # Eyes. Paired features are drawn once on mirrored coordinates (|x|): half the work, same image.
    openness = 1.0 + 0.9 * g["lid_raise"] - 0.5 * g["lid_tighten"] - 0.4 * g["cheek_raise"]
    openness = float(np.clip(openness, 0.15, 2.0)) * (1.0 - 0.92 * pose.blink)
    ex_, ey_ = at(0.12)
    ax_ = np.abs(ex_)
    cx, cy = ident.eye_dx, ident.eye_y
    rx, ry_e = 0.095 * ident.eye_size, 0.042 * ident.eye_size * openness
    socket = _ellipse_sdf(ax_, ey_, cx, cy - 0.01, rx * 1.4, 0.075 * ident.eye_size)
    cv.paint(cv.coverage(socket, soft=4), skin * 0.78)
    white_sdf = _ellipse_sdf(ax_, ey_, cx, cy, rx, max(ry_e, 1e-3))
    white = cv.coverage(white_sdf)
    cv.paint(white, (0.92, 0.9, 0.88))
    # gaze moves both irises the same way in the image, i.e. opposite ways in mirrored coordinates
    ix = cx + np.sign(ex_) * pose.gaze_x * rx * 0.4
    iy = cy + pose.gaze_y * 0.01
    iris_r, pupil_r = 0.038 * ident.eye_size, 0.017 * ident.eye_size
    cv.paint(cv.coverage(_ellipse_sdf(ax_, ey_, ix, iy, iris_r, iris_r)) * white, ident.iris)
    cv.paint(cv.coverage(_ellipse_sdf(ax_, ey_, ix, iy, pupil_r, pupil_r)) * white, (0.03, 0.03, 0.03))
    lid = np.maximum(np.abs(white_sdf) - 0.006, ey_ - cy)
    cv.paint(cv.coverage(lid), (0.1, 0.07, 0.06))
    # lower-lid bulge of a cheek raise
    if g["cheek_raise"] > 0:
        bulge = np.abs(_ellipse_sdf(ax_, ey_, cx, cy + 0.035, rx * 0.9, 0.035)) - 0.004
        bulge = np.maximum(bulge, cy + 0.035 - ey_)
        cv.paint(cv.coverage(bulge, soft=1.5), skin * 0.6, opacity=0.9 * g["cheek_raise"])

    # Brows: inner end up with AU1, outer end up with AU2, inner end down and in with AU4.
    bx, by = at(0.1)
    inner_x = ident.eye_dx - 0.075 - 0.03 * g["brow_lower"]
    inner_y = ident.eye_y - 0.1 - 0.085 * g["brow_inner_raise"] + 0.06 * g["brow_lower"]
    outer_x = ident.eye_dx + 0.11
    outer_y = ident.eye_y - 0.1 - 0.08 * g["brow_outer_raise"] + 0.015 * g["brow_lower"]
    brow = _segment_sdf(np.abs(bx), by, inner_x, inner_y, outer_x, outer_y, ident.brow_thick)
    cv.paint(cv.coverage(brow), np.asarray(ident.hair) * 0.8)

    # Glasses.
    if ident.glasses:
        ring = np.abs(_ellipse_sdf(ax_, ey_, ident.eye_dx, ident.eye_y, 0.13, 0.1)) - 0.009
        cv.paint(cv.coverage(ring), (0.1, 0.1, 0.12))
        bridge = _segment_sdf(
            ex_, ey_, -ident.eye_dx + 0.13, ident.eye_y, ident.eye_dx - 0.13, ident.eye_y, 0.008
        )
        cv.paint(cv.coverage(bridge), (0.1, 0.1, 0.12))

    # Nose: side shadow, wrinkle lines at the bridge (AU9), nostrils that flare and rise (AU9/AU10).
    nox, noy = at(0.3)
    tip_y = ident.eye_y + ident.nose_len - 0.02 * g["nose_wrinkle"]
    shadow = _segment_sdf(nox, noy, 0.03, ident.eye_y + 0.05, 0.04, tip_y - 0.02, 0.012)
    cv.paint(cv.coverage(shadow, soft=3), skin * 0.7, opacity=0.6)
    if g["nose_wrinkle"] > 0:
        for k in range(3):
            wl = np.maximum(np.abs(noy - (ident.eye_y + 0.05 + 0.025 * k)) - 0.004, np.abs(nox) - 0.045)
            cv.paint(cv.coverage(wl, soft=1.5), skin * 0.5, opacity=0.9 * g["nose_wrinkle"])
    flare = 1.0 + 0.45 * g["nose_wrinkle"] + 0.25 * g["upper_lip_raise"]
    nostril = _ellipse_sdf(np.abs(nox), noy, 0.045 * flare, tip_y, 0.025 * flare, 0.014)
    cv.paint(cv.coverage(nostril), skin * 0.35)

    # Mouth: corners pulled up/out (AU12), down (AU15), stretched (AU20), pressed (AU23), raised upper lip
    # (AU10), open jaw (AU25/26), one corner up (AU14).
    mx, my = at(0.2)
    mouth_y = tip_y + 0.13 + 0.04 * jaw
    w = ident.mouth_w * (1 + 0.32 * g["lip_stretch"] + 0.2 * g["lip_corner_pull"] - 0.25 * g["lip_tighten"])
    corner = -0.075 * g["lip_corner_pull"] + 0.07 * g["lip_corner_depress"] + 0.02 * g["lip_stretch"]
    corner_side = corner - 0.07 * g["asym_corner"] * (mx > 0)
    opening = (0.004 + 0.15 * jaw + 0.03 * g["upper_lip_raise"] + 0.02 * g["lip_stretch"]) * (
        1 - 0.7 * g["lip_tighten"]
    )
    t = np.clip(mx / w, -1.0, 1.0)
    bow = 1.0 - t * t
    upper = mouth_y + corner_side * t * t - opening * 0.3 * bow - 0.03 * g["upper_lip_raise"] * bow
    lower = mouth_y + corner_side * t * t + opening * 0.7 * bow
    side_cov = np.clip((w - np.abs(mx)) / cv.px + 0.5, 0, 1)
    # folds from the nostrils to the mouth corners deepen with smiles, sneers and stretches
    fold_strength = float(
        np.clip(0.15 + 0.8 * g["lip_corner_pull"] + 0.6 * g["upper_lip_raise"] + 0.4 * g["lip_stretch"], 0, 1)
    )
    fold = _segment_sdf(np.abs(mx), my, 0.08 * flare, tip_y + 0.01, w + 0.035, mouth_y + corner * 0.8, 0.005)
    cv.paint(cv.coverage(fold, soft=2), skin * 0.6, opacity=fold_strength)
    lip_u = 0.022 * (1 - 0.6 * g["lip_tighten"])
    lip_l = 0.032 * (1 - 0.6 * g["lip_tighten"])
    lips = np.clip(np.minimum(my - (upper - lip_u), (lower + lip_l) - my) / cv.px + 0.5, 0, 1) * side_cov
    cv.paint(lips, ident.lip)
    interior = np.clip(np.minimum(my - upper, lower - my) / cv.px + 0.5, 0, 1) * side_cov
    cv.paint(interior, (0.22, 0.05, 0.06))
    teeth_vis = float(
        np.clip(1.6 * g["lip_corner_pull"] + 1.2 * g["upper_lip_raise"] + g["lip_stretch"] - 0.3, 0, 1)
    )
    teeth = interior * np.clip((upper + (lower - upper) * 0.45 - my) / cv.px + 0.5, 0, 1)
    cv.paint(teeth, (0.92, 0.9, 0.84), opacity=teeth_vis)
    seam = np.clip(1.0 - np.abs(my - 0.5 * (upper + lower)) / (cv.px * 1.2), 0, 1) * side_cov
    cv.paint(seam, np.asarray(ident.lip) * 0.45, opacity=0.8)
    # contempt dimple at the raised corner
    dimple = _ellipse_sdf(mx, my, w + 0.015, mouth_y + corner - 0.07 * g["asym_corner"], 0.012, 0.012)
    cv.paint(cv.coverage(dimple, soft=2), skin * 0.55, opacity=0.8 * g["asym_corner"])
    # cheek blush with a raise
    if g["cheek_raise"] > 0:
        cheek_y = ident.eye_y + 0.17 - 0.03 * g["cheek_raise"]
        cheek = _ellipse_sdf(np.abs(mx), my, ident.eye_dx + 0.02, cheek_y, 0.1, 0.07)
        blush = skin * np.array([1.05, 0.85, 0.85])
        cv.paint(cv.coverage(cheek, soft=8), blush, opacity=0.35 * g["cheek_raise"])

    return np.clip(cv.rgb, 0, 1), cv.alpha
