"""``recognizer export --checkpoint C --onnx model.onnx``: the fused recognizer as one ONNX graph.

Inputs (the cache's own formats, batch axis dynamic): ``video`` uint8 ``[B, K, 3, H, W]``, ``audio`` float32
log-mel ``[B, 1, F, T]``, ``has_video`` / ``has_audio`` bool ``[B]``. Outputs: ``prob`` (the proportional
fusion with the checkpoint's selected m, n), ``prob_v``, ``prob_a`` (uniform where the branch is absent).
K, H, W, F and T are fixed to the checkpoint's data config (``preprocess``); the graph normalises the frames
itself. The file's metadata carries the preprocessing and the selection (``recognizer predict --onnx``
reads a recording with them). onnxruntime runs it (``recognizer.onnx_runtime``); the PyTorch model and the
graph agree to 1e-4.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from expr_common.atomic import atomic_write
from expr_common.config import from_dict, to_dict
from expr_common.data.config import PreprocessConfig, load_data_config
from expr_common.data.dataset import normalize_video
from expr_common.errors import ExprError, MissingDataError
from expr_common.outputs import add_overwrite_argument, check_output_file
from expr_common.paths import cli_path, resolve_path
from recognizer.fusion import proportional_fusion
from recognizer.inputs import check_same_inputs
from recognizer.model import AudioVisualRecognizer

INPUTS = ("video", "audio", "has_video", "has_audio")
OUTPUTS = ("prob", "prob_v", "prob_a")

# Keys of the metadata an ONNX export carries (recognizer/export.py writes them, OnnxPredictor reads them).
META_PREPROCESS, META_SELECTION, META_MODALITIES = "preprocess", "selection", "modalities"


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


def onnx_metadata(preprocess: PreprocessConfig, selection: dict[str, Any], modalities: str) -> dict[str, str]:
    return {
        META_PREPROCESS: json.dumps(to_dict(preprocess)),
        META_SELECTION: json.dumps(selection),
        META_MODALITIES: modalities,
    }


class ExportError(ExprError, RuntimeError):
    pass


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


def example_inputs(preprocess, batch: int = 2) -> tuple[torch.Tensor, ...]:
    video = torch.zeros(
        batch, preprocess.frames, 3, preprocess.image_size, preprocess.image_size, dtype=torch.uint8
    )
    audio = torch.zeros(batch, 1, preprocess.n_mels, preprocess.mel_steps)
    ones = torch.ones(batch, dtype=torch.bool)
    return video, audio, ones, ones.clone()


def export_onnx(
    checkpoint: str | Path, out: str | Path, data: str | None = None, *, overwrite: bool = False
) -> dict:
    """Write the fused model of ``checkpoint`` to ``out`` (atomically); returns what was written. The input
    sizes come from the checkpoint's data config (``data``: another one with the same preprocessing).
    ``out`` may not be the checkpoint or the data config, nor an existing file unless ``overwrite``."""
    from recognizer.evaluate import load_model

    check_output_file(out, flag="--onnx", overwrite=overwrite, inputs=(checkpoint, data))

    model, cfg, state = load_model(checkpoint)
    selection = selected_fusion(cfg, state)
    m, n = selection["m"], selection["n"]
    preprocess = checkpoint_preprocess(cfg, state, data, f"checkpoint {checkpoint}")
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.onnx.export(
        FusedRecognizer(model, m, n), example_inputs(preprocess), input_names=list(INPUTS),
        output_names=list(OUTPUTS), dynamic_shapes={name: {0: batch} for name in INPUTS}, dynamo=True,
        verbose=False,
    )  # fmt: skip
    if program is None:
        raise ExportError(f"torch.onnx.export returned no program for {checkpoint}")
    proto = program.model_proto
    for key, value in onnx_metadata(preprocess, selection, cfg.model.modalities).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_write(out, "wb") as handle:
        handle.write(proto.SerializeToString())
    return {
        "onnx": str(out),
        "checkpoint": str(checkpoint),
        "m": m,
        "n": n,
        "modalities": cfg.model.modalities,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a recognizer checkpoint (best.pt)")
    parser.add_argument("--onnx", required=True, type=Path, help="the .onnx file to write")
    parser.add_argument(
        "--data", type=cli_path, help="data config for the input sizes (default: the checkpoint's)"
    )
    add_overwrite_argument(parser, "an existing --onnx file")


def run(args: argparse.Namespace) -> int:
    print(json.dumps(export_onnx(args.checkpoint, args.onnx, args.data, overwrite=args.overwrite)))
    return 0
