"""An exported recognizer (``recognizer export``) on onnxruntime: the same call as the PyTorch model's
fused output, on numpy arrays in the cache's formats. It owns the graph's input and output names, which
:mod:`recognizer.export` writes; running an export never imports the exporter."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from expr_common.errors import ExprError

INPUTS = ("video", "audio", "has_video", "has_audio")  # the exported graph's inputs, in order
OUTPUTS = ("prob", "prob_v", "prob_a")  # and outputs: fused, visual and audio probabilities


class OnnxModelError(ExprError, ValueError):
    pass


class OnnxRecognizer:
    """``OnnxRecognizer(path)(video, audio, has_video, has_audio) -> {prob, prob_v, prob_a}`` (numpy)."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort
        from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidGraph, InvalidProtobuf

        if not Path(path).is_file():
            raise OnnxModelError(f"{path}: no such ONNX file (write one with `recognizer export`)")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except (Fail, InvalidGraph, InvalidProtobuf) as exc:
            raise OnnxModelError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from exc
        names = [i.name for i in self.session.get_inputs()]
        if names != list(INPUTS):
            raise OnnxModelError(f"{path}: inputs {names}, expected {list(INPUTS)} (not a recognizer export)")
        shapes = {i.name: i.shape for i in self.session.get_inputs()}
        self.frames, _, self.image_size = shapes["video"][1], shapes["video"][2], shapes["video"][3]
        self.n_mels, self.mel_steps = shapes["audio"][2], shapes["audio"][3]

    def __call__(self, video, audio, has_video, has_audio) -> dict[str, np.ndarray]:
        feeds = {
            "video": np.ascontiguousarray(video, dtype=np.uint8),
            "audio": np.ascontiguousarray(audio, dtype=np.float32),
            "has_video": np.ascontiguousarray(has_video, dtype=bool),
            "has_audio": np.ascontiguousarray(has_audio, dtype=bool),
        }
        return dict(zip(OUTPUTS, self.session.run(list(OUTPUTS), feeds)))
