"""Face crops: aligned crops are resized; whole frames go through OpenCV's bundled Haar cascade.

The cascade (``opencv-python-headless`` 4.x ships it in the wheel, nothing is downloaded) misses faces in
many frames (on the synthetic corpus ~35% of CK+ and ~40-55% of AFEW frames), so detection works per
clip: every sampled frame is searched, frames without a box of their own borrow the nearest detection in
time (a clip-level track), and only a clip with no detection at all falls back to a centre crop.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import cv2
import numpy as np
from einops import rearrange

# x, y, width, height in the frame's pixels; a detector with eye landmarks (MTCNN) adds the roll that levels
# the eyes, in degrees (counter-clockwise), as a fifth element: the crop is then rotated by it.
Box = tuple
CASCADE_FILE = "haarcascade_frontalface_default.xml"


@dataclass
class FaceStats:
    """Detector bookkeeping, summed over a whole prepare run."""

    frames_detected: int = 0  # sampled frames searched by the detector
    frames_without_detection: int = 0  # ... that had no box of their own (filled from the clip track)
    clips_detected: int = 0  # clips that went through the detector
    clips_centre_crop: int = 0  # ... with no detection in any frame: centre crop

    def add(self, other: FaceStats) -> FaceStats:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self


class HaarDetector:
    """The largest frontal face of an RGB frame, or None."""

    def __init__(self, min_neighbors: int = 5, detect_side: int = 320):
        path = cv2.data.haarcascades + CASCADE_FILE
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(
                f"cannot load OpenCV's Haar cascade {path}: is opencv-python-headless 4.x installed?"
            )
        self.min_neighbors = min_neighbors
        self.detect_side = detect_side
        self.clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))

    def __call__(self, image: np.ndarray) -> Box | None:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        # One working size both ways: large frames get faster, and small ones (AFEW-like 160x120) get
        # faces above the cascade's 24 px window (47% -> 64% of synthetic AFEW frames detected).
        scale = self.detect_side / max(gray.shape)
        if abs(scale - 1) > 0.05:
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=interpolation)
        else:
            scale = 1.0
        # Local contrast equalisation lifts dim movie faces: on the synthetic corpus clips with a detection
        # rose from 68% to 81% (AFEW) and 60% to 76% (CK+); global equalizeHist made both worse.
        gray = self.clahe.apply(gray)
        smallest = max(24, int(0.12 * min(gray.shape)))  # faces under 12% of the frame: not the subject
        boxes = self.cascade.detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=(smallest, smallest)
        )
        if len(boxes) == 0:
            return None
        x, y, w, h = max(boxes, key=lambda b: int(b[2]) * int(b[3]))
        return (int(round(x / scale)), int(round(y / scale)), int(round(w / scale)), int(round(h / scale)))


@functools.lru_cache(maxsize=4)
def get_detector(min_neighbors: int = 5, detect_side: int = 320) -> HaarDetector:
    """One detector per process and setting (loading the cascade XML takes ~50 ms)."""
    return HaarDetector(min_neighbors, detect_side)


def detectors_for(cfg) -> tuple[Callable[[np.ndarray], Box | None], Callable[[np.ndarray], Box | None]]:
    """The (strict, permissive retry) detectors that ``cfg`` (a PreprocessConfig) names: OpenCV's Haar
    cascade or MTCNN (:mod:`expr_common.data.mtcnn`)."""
    if cfg.face_detector == "mtcnn":
        from expr_common.data.mtcnn import PERMISSIVE, STRICT, get_mtcnn

        return (
            get_mtcnn(STRICT, cfg.detect_side, cfg.face_align),
            get_mtcnn(PERMISSIVE, cfg.detect_side, cfg.face_align),
        )
    return (
        get_detector(cfg.face_min_neighbors, cfg.detect_side),
        get_detector(cfg.face_retry_min_neighbors, cfg.detect_side),
    )


def needs_detection(domain: str, from_video: bool, faces: str = "auto") -> bool:
    """``faces`` of a source: "auto" takes Aff-Wild2 crops and synthetic (GAN) frames as aligned faces
    and sends every other frame (AFEW, CK+, manifest videos) through the detector."""
    if faces != "auto":
        return faces == "detect"
    return not (domain == "synthetic" or (domain == "affwild2" and not from_video))


def fill_from_nearest(
    boxes: Sequence[Box | None], times: Sequence[int], max_gap: int | None = None
) -> list[Box | None]:
    """Each missing box replaced by the detection nearest in time (earlier wins a tie), if it lies at most
    ``max_gap`` frames away (any distance when None); all None when there is no detection."""
    found = sorted((int(t), i) for i, (t, b) in enumerate(zip(times, boxes)) if b is not None)
    if not found:
        return [None] * len(boxes)
    at = np.array([t for t, _ in found], dtype=np.int64)
    filled: list[Box | None] = []
    for t, b in zip(times, boxes):
        if b is not None:
            filled.append(b)
            continue
        after = int(np.searchsorted(at, t))  # the first detection at or after t
        around = [after] if after < len(at) else []
        if after > 0:
            around.append(int(np.searchsorted(at, at[after - 1])))  # the first one at the time before
        near = min(around, key=lambda j: (abs(int(at[j]) - int(t)), int(at[j])))
        close = max_gap is None or abs(int(at[near]) - int(t)) <= max_gap
        filled.append(boxes[found[near][1]] if close else None)
    return filled


def expand_box(box: Box, margin: float) -> tuple[int, int, int]:
    """A square ``(x0, y0, side)`` around ``box`` grown by ``margin`` of its side on every side."""
    x, y, w, h = box[:4]
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2
    return int(round(cx - side / 2)), int(round(cy - side / 2)), max(1, int(round(side)))


def centre_square(height: int, width: int) -> tuple[int, int, int]:
    side = min(height, width)
    return (width - side) // 2, (height - side) // 2, side


def crop_square(image: np.ndarray, x0: int, y0: int, side: int, size: int, roll: float = 0.0) -> np.ndarray:
    """``image[y0:y0+side, x0:x0+side]`` resized to ``size`` x ``size``, turned by ``roll`` degrees
    (counter-clockwise) about its centre first; parts outside the frame repeat its edge pixels (a hard black
    border would be an artefact the GAN learns to draw)."""
    if roll:
        centre = (x0 + side / 2, y0 + side / 2)
        warp = cv2.getRotationMatrix2D(centre, roll, size / side)
        warp[:, 2] += (size / 2 - centre[0], size / 2 - centre[1])
        return cv2.warpAffine(image, warp, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    height, width = image.shape[:2]
    pad = max(0, -x0, -y0, x0 + side - width, y0 + side - height)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    patch = image[y0 : y0 + side, x0 : x0 + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interpolation)


def detect_clip(
    frames: Sequence[np.ndarray],
    times: Sequence[int],
    detectors: Sequence[Callable[[np.ndarray], Box | None]],
    strict_known: dict[int, Box | None] | None = None,
) -> list[Box | None]:
    """A box (or None) per frame. Each detector (strict first) runs on every distinct frame until the clip
    has a detection: a permissive retry only where the strict pass found nothing at all. ``strict_known``
    (frame -> the strict detector's answer) is read and filled, so overlapping windows detect a frame once."""
    boxes: list[Box | None] = [None] * len(frames)
    for k, detector in enumerate(detectors):
        found: dict[int, Box | None] = strict_known if k == 0 and strict_known is not None else {}
        for i, (frame, t) in enumerate(zip(frames, times)):
            if t not in found:  # a short clip repeats frames; detect each once
                found[t] = detector(frame)
            boxes[i] = found[t]
        if any(b is not None for b in boxes):
            break
    return boxes


def face_crops(
    frames: Sequence[np.ndarray],
    times: Sequence[int],
    *,
    size: int,
    detect: bool,
    margin: float = 0.35,
    detectors: Sequence[Callable[[np.ndarray], Box | None]] = (),
    boxes: Sequence[Box | None] | None = None,
) -> tuple[np.ndarray, FaceStats]:
    """K RGB frames (uint8 ``[H, W, 3]``, at frame indices ``times``) -> uint8 ``[K, 3, size, size]``.

    ``detect=False``: frames are already aligned face crops (centre square, resized). ``detect=True``:
    faces are found with ``detectors`` (see :func:`detect_clip`; or given as ``boxes``, for tests) and
    tracked over the clip."""
    stats = FaceStats()
    if not detect:
        crops = [crop_square(f, *centre_square(*f.shape[:2]), size) for f in frames]
        return rearrange(np.stack(crops), "k h w c -> k c h w"), stats
    if boxes is None:
        boxes = detect_clip(frames, times, detectors or (get_detector(),))
    stats.clips_detected = 1
    stats.frames_detected = len(frames)
    stats.frames_without_detection = sum(b is None for b in boxes)
    tracked = fill_from_nearest(boxes, times)
    crops = []
    for frame, box in zip(frames, tracked):
        square = centre_square(*frame.shape[:2]) if box is None else expand_box(box, margin)
        roll = float(box[4]) if box is not None and len(box) > 4 else 0.0
        crops.append(crop_square(frame, *square, size, roll))
    stats.clips_centre_crop = int(all(b is None for b in tracked))
    return rearrange(np.stack(crops), "k h w c -> k c h w"), stats


def read_image(path: str) -> np.ndarray | None:
    """An image file as RGB uint8 ``[H, W, 3]`` (grayscale CK+ frames get three equal channels), or None
    when it cannot be read: the caller counts it and uses a neighbouring frame."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
