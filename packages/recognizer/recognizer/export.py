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

from expr_common.atomic import atomic_write
from expr_common.config import to_dict
from expr_common.data.config import PreprocessConfig
from expr_common.errors import ExprError
from expr_common.outputs import add_overwrite_argument, check_output_file
from expr_common.paths import cli_path
from recognizer.inference import (
    META_MODALITIES,
    META_PREPROCESS,
    META_SELECTION,
    FusedRecognizer,
    checkpoint_preprocess,
    load_model,
    selected_fusion,
)
from recognizer.onnx_runtime import INPUTS, OUTPUTS


def onnx_metadata(preprocess: PreprocessConfig, selection: dict[str, Any], modalities: str) -> dict[str, str]:
    return {
        META_PREPROCESS: json.dumps(to_dict(preprocess)),
        META_SELECTION: json.dumps(selection),
        META_MODALITIES: modalities,
    }


class ExportError(ExprError, RuntimeError):
    pass


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
