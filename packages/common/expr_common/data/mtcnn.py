"""MTCNN face detection (Zhang et al., 2016) from the ``facenet-pytorch`` wheel, whose three small networks'
weights ship inside the wheel: nothing is downloaded. Same call as the Haar detector (the largest face's
box, or None), the box carrying the roll that levels the eyes (``preprocess.face_align``), so crops are
aligned eyes level; :meth:`MtcnnDetector.detect_landmarks` gives the five points (eyes, nose, mouth corners).

Frames are scaled to ``detect_side`` on their longer side first, as for the cascade; faces under 12% of the
frame's shorter side are not the subject and are not searched for.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

# Per-stage confidence thresholds (P-, R-, O-Net). Strict: facenet-pytorch's defaults; the permissive
# retry, for a clip where the strict pass found nothing, lowers each by 0.1.
STRICT = (0.6, 0.7, 0.7)
PERMISSIVE = (0.5, 0.6, 0.6)
SMALLEST_FACE = 0.12  # of the frame's shorter side, as for the Haar cascade


class MtcnnDetector:
    def __init__(
        self, thresholds: tuple[float, float, float] = STRICT, detect_side: int = 320, align: bool = True
    ) -> None:
        from facenet_pytorch import MTCNN

        self.thresholds, self.detect_side, self.align = tuple(thresholds), detect_side, align
        self.mtcnn = MTCNN(thresholds=list(thresholds), select_largest=True, keep_all=False, device="cpu")

    def detect_landmarks(self, image: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        """(box, five ``(x, y)`` points in frame pixels) of the largest face of an RGB frame, or None."""
        rgb = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image
        scale = self.detect_side / max(rgb.shape[:2])
        if abs(scale - 1) > 0.05:
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=interpolation)
        else:
            scale = 1.0
        self.mtcnn.min_face_size = max(12, int(SMALLEST_FACE * min(rgb.shape[:2])))
        boxes, _, points = self.mtcnn.detect(np.ascontiguousarray(rgb), landmarks=True)
        if boxes is None or len(boxes) == 0:
            return None
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        best = int(np.argmax(areas))
        x0, y0, x1, y1 = (float(v) / scale for v in boxes[best])
        box = (int(round(x0)), int(round(y0)), max(1, int(round(x1 - x0))), max(1, int(round(y1 - y0))))
        return box, np.asarray(points[best], np.float64) / scale

    def __call__(self, image: np.ndarray) -> tuple | None:
        """The largest face's box; with ``align``, plus the roll that levels its eyes (a 5-element box)."""
        found = self.detect_landmarks(image)
        if found is None:
            return None
        box, points = found
        return (*box, eye_roll(points)) if self.align else box


def eye_roll(points: np.ndarray) -> float:
    """Degrees (counter-clockwise) that bring the eyes (the first two of MTCNN's five points) level."""
    (lx, ly), (rx, ry) = points[0], points[1]
    return round(float(np.degrees(np.arctan2(ry - ly, rx - lx))), 2)


@functools.lru_cache(maxsize=4)
def get_mtcnn(
    thresholds: tuple[float, float, float] = STRICT, detect_side: int = 320, align: bool = True
) -> MtcnnDetector:
    """One detector per process and setting (building the three networks takes ~0.1 s)."""
    return MtcnnDetector(thresholds, detect_side, align)
