"""A trained recognizer as one call on windows, from a checkpoint (PyTorch) or an export (onnxruntime):
``predictor(video, audio, has_video, has_audio) -> {prob, prob_v, prob_a}`` on numpy arrays in the cache's
formats, with the fusion (m, n) chosen on validation; ``preprocess`` is the data preprocessing it was
trained with and ``window`` its smoothing window, so a new recording is read the way its training data was.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from expr_common.config import from_dict
from expr_common.data.config import PreprocessConfig
from recognizer.inference import (
    META_MODALITIES,
    META_PREPROCESS,
    META_SELECTION,
    FusedRecognizer,
    checkpoint_preprocess,
    load_model,
    selected_fusion,
)


class TorchPredictor:
    def __init__(self, checkpoint: str | Path, data: str | Path | None = None) -> None:
        model, cfg, state = load_model(checkpoint)
        self.selection = selected_fusion(cfg, state)
        self.window = self.selection["window"]
        self.modalities = cfg.model.modalities
        self.preprocess = checkpoint_preprocess(cfg, state, data, f"checkpoint {checkpoint}")
        self.model = FusedRecognizer(model, self.selection["m"], self.selection["n"])

    @torch.inference_mode()
    def __call__(self, video, audio, has_video, has_audio) -> dict[str, np.ndarray]:
        prob, prob_v, prob_a = self.model(
            torch.from_numpy(np.ascontiguousarray(video)),
            torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)),
            torch.from_numpy(np.asarray(has_video, bool)),
            torch.from_numpy(np.asarray(has_audio, bool)),
        )
        return {"prob": prob.numpy(), "prob_v": prob_v.numpy(), "prob_a": prob_a.numpy()}


class OnnxPredictor:
    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        from recognizer.onnx_runtime import OnnxModelError, OnnxRecognizer

        self.session = OnnxRecognizer(path, threads)
        meta = self.session.session.get_modelmeta().custom_metadata_map
        if META_PREPROCESS not in meta:
            raise OnnxModelError(f"{path}: carries no preprocessing metadata; export it again")
        self.preprocess = from_dict(_json_meta(meta, META_PREPROCESS, path), PreprocessConfig, str(path))
        self.selection = _json_meta(meta, META_SELECTION, path) if META_SELECTION in meta else {}
        self.window = int(self.selection.get("window") or 1)
        self.modalities = meta.get(META_MODALITIES, "av")
        check_metadata(self.session, self.preprocess, self.modalities, path)

    def __call__(self, video, audio, has_video, has_audio) -> dict[str, np.ndarray]:
        return self.session(video, audio, has_video, has_audio)


def _json_meta(meta: dict[str, str], key: str, path: str | Path) -> dict:
    from recognizer.onnx_runtime import OnnxModelError

    try:
        value = json.loads(meta[key])
    except ValueError:
        raise OnnxModelError(f"{path}: metadata {key!r} is not JSON; export the model again") from None
    if not isinstance(value, dict):
        raise OnnxModelError(f"{path}: metadata {key!r} is not a JSON object; export the model again")
    return value


def check_metadata(session, preprocess: PreprocessConfig, modalities: str, path: str | Path) -> None:
    """The metadata must describe the graph it rides on: its modalities, and the frames, image size and
    log-mel of the graph's inputs (an edited file would fail inside onnxruntime, or label nothing)."""
    from recognizer.onnx_runtime import OnnxModelError

    if modalities not in ("av", "v", "a"):
        raise OnnxModelError(f"{path}: metadata modalities {modalities!r} is not av, v or a")
    graph = {"frames": session.frames, "image_size": session.image_size, "n_mels": session.n_mels,
             "mel_steps": session.mel_steps}  # fmt: skip
    meta = {"frames": preprocess.frames, "image_size": preprocess.image_size, "n_mels": preprocess.n_mels,
            "mel_steps": preprocess.mel_steps}  # fmt: skip
    differ = [f"{k} {meta[k]} in the metadata, {graph[k]} in the graph" for k in graph if graph[k] != meta[k]]
    if differ:
        raise OnnxModelError(f"{path}: {'; '.join(differ)}; export the model again")
