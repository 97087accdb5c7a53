"""A trained recognizer for inference, the one place the commands and the library get it from: the model
rebuilt from a checkpoint, its selection (fusion m, n and smoothing window), the preprocessing it was
trained with, and the fused model (both branches, the masks, the proportional fusion) that ``evaluate``'s
windows, ``predict``, the library API and the ONNX export all run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from expr_common.checkpoint import load_checkpoint
from expr_common.config import from_dict
from expr_common.data.config import PreprocessConfig, load_data_config
from expr_common.data.dataset import normalize_video
from expr_common.errors import MissingDataError
from expr_common.paths import resolve_path
from recognizer.fusion import proportional_fusion
from recognizer.inputs import check_same_inputs
from recognizer.model import AudioVisualRecognizer
from recognizer.run_config import RecognizerConfig, stored_recognizer_config

# Keys of the metadata an ONNX export carries (recognizer/export.py writes them, OnnxPredictor reads them).
META_PREPROCESS, META_SELECTION, META_MODALITIES = "preprocess", "selection", "modalities"


def load_model(checkpoint: str | Path) -> tuple[AudioVisualRecognizer, RecognizerConfig, dict[str, Any]]:
    """Rebuild the model from the config stored in the checkpoint (no YAML needed)."""
    state = load_checkpoint(checkpoint)
    cfg = stored_recognizer_config(state, f"checkpoint {checkpoint}")
    model = AudioVisualRecognizer(cfg.model)
    model.load_state_dict(state["model"])
    return model, cfg, state


def selected_fusion(cfg, state: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's selection (m, n, smoothing window), or the config's fusion before any selection."""
    selection = state.get("selection") or {}
    return {
        "m": int(selection.get("m") or cfg.model.fusion.m),
        "n": int(selection.get("n") or cfg.model.fusion.n),
        "window": int(selection.get("window") or 1),
    }


def checkpoint_preprocess(
    cfg, state: dict[str, Any], data: str | Path | None, source: str
) -> PreprocessConfig:
    """The preprocessing a checkpoint was trained with: stored in it (since the video predictor), else read
    from ``data`` or the data config its run named."""
    if data is None and state.get("preprocess"):
        return from_dict(state["preprocess"], PreprocessConfig, source)
    path = resolve_path(data if data is not None else cfg.data)
    if not path.is_file():
        raise MissingDataError(
            f"{source} does not store its preprocessing and its data config {path} is not here: pass --data"
        )
    preprocess = load_data_config(path, [] if data is not None else cfg.data_overrides).preprocess
    check_same_inputs(state, preprocess, source, path)
    return preprocess


class FusedRecognizer(nn.Module):
    """The recognizer without data-dependent control flow, for tracing: both branches run on every sample
    (in eval mode a sample's output does not depend on the others), then the masks pick, as in training."""

    def __init__(self, model: AudioVisualRecognizer, m: int, n: int) -> None:
        super().__init__()
        self.model, self.m, self.n = model, m, n
        self.eval()

    def forward(self, video, audio, has_video, has_audio):
        model, C = self.model, self.model.cfg.num_classes
        uniform = torch.full((video.shape[0], C), 1.0 / C, dtype=audio.dtype, device=audio.device)
        prob_v = prob_a = uniform
        if model.visual is not None:
            prob_v = model.head_v(model.visual(normalize_video(video))).softmax(dim=1)
            prob_v = torch.where(has_video[:, None], prob_v, uniform)
        if model.audio is not None:
            prob_a = model.head_a(model.audio(audio)).softmax(dim=1)
            prob_a = torch.where(has_audio[:, None], prob_a, uniform)
        if model.visual is not None and model.audio is not None:
            prob = proportional_fusion(prob_a, prob_v, self.m, self.n, has_audio, has_video)
        else:  # one branch: its probabilities; the absent branch's outputs stay uniform placeholders
            prob = prob_v if model.visual is not None else prob_a
        return prob, prob_v, prob_a
