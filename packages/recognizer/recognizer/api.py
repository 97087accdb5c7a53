"""The recognizer as a library: load a trained model and call it on arrays or on a recording.

    from recognizer import load_recognizer
    model = load_recognizer("runs/rec/checkpoints/best.pt")        # or an ONNX export (.onnx)
    out = model.predict(video=frames)                              # uint8 [B, K, 3, S, S]
    out["label"], out["prob"]                                       # class names, fused probabilities
    frames = model.predict_video("clip.mp4")                        # per frame, as `recognizer predict`

A checkpoint and its ONNX export give the same probabilities (within 1e-4); both read a recording with the
preprocessing they were trained with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from expr_common.data.audio import silent_log_mel
from expr_common.data.config import PreprocessConfig
from expr_common.labels import CLASS_NAMES
from recognizer.predict_video import FramePredictions, predict_recording
from recognizer.predictors import OnnxPredictor, TorchPredictor


class Recognizer:
    """A trained recognizer (see :func:`load_recognizer`)."""

    def __init__(self, predictor: TorchPredictor | OnnxPredictor, source: Path) -> None:
        self.predictor, self.source = predictor, source

    @property
    def modalities(self) -> str:
        return self.predictor.modalities

    @property
    def preprocess(self) -> PreprocessConfig:
        """How its inputs were made: frames per window, face size, sample rate, mels, window length."""
        return self.predictor.preprocess

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(CLASS_NAMES)

    def predict(self, video: Any = None, audio: Any = None) -> dict[str, Any]:
        """Probabilities of a batch of windows: ``video`` uint8 ``[B, K, 3, S, S]`` (face crops as the cache
        holds them) and/or ``audio`` log-mels ``[B, 1, F, T]`` (numpy or torch); a missing one is absent for
        every row. Returns ``prob`` (fused), ``prob_v``, ``prob_a`` as ``[B, C]`` numpy and ``label``
        (class names)."""
        video, audio = _numpy(video), _numpy(audio)
        if video is None and audio is None:
            raise ValueError("predict: give video, audio or both")
        batch = len(video) if video is not None else len(audio)
        if video is not None and audio is not None and len(audio) != batch:
            raise ValueError(f"predict: {batch} video windows but {len(audio)} audio windows")
        has_video, has_audio = np.full(batch, video is not None), np.full(batch, audio is not None)
        if video is None:
            size, k = self.preprocess.image_size, self.preprocess.frames
            video = np.zeros((batch, k, 3, size, size), np.uint8)
        if audio is None:
            audio = np.repeat(silent_log_mel(self.preprocess).numpy()[None], batch, axis=0)
        out = self.predictor(video, audio.astype(np.float32, copy=False), has_video, has_audio)
        return out | {"label": [CLASS_NAMES[i] for i in out["prob"].argmax(axis=1)]}

    def predict_video(
        self, path: str | Path, *, faces: str = "detect", batch_size: int = 16
    ) -> FramePredictions:
        """One recording (a video, a sound file or an image), per decoded frame, as ``recognizer predict
        --video``: ``prob`` ``[N, C]`` (NaN where a frame has no label), ``label`` (-1 there),
        ``has_face``."""
        return predict_recording(self.predictor, path, faces=faces, batch_size=batch_size)


def load_recognizer(path: str | Path, data: str | Path | None = None) -> Recognizer:
    """A recognizer checkpoint (``best.pt``) or its ONNX export (``.onnx``), ready to predict. ``data``: a
    data config whose preprocessing replaces the checkpoint's (same inputs only; checkpoints only)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        if data is not None:
            raise ValueError(f"{path}: an ONNX export carries its own preprocessing; leave data out")
        return Recognizer(OnnxPredictor(path), path)
    return Recognizer(TorchPredictor(path, data), path)


def _numpy(x: Any) -> np.ndarray | None:
    if x is None or isinstance(x, np.ndarray):
        return x
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)
