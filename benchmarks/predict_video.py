"""`recognizer predict --video` throughput at the paper's input (issue 16): input-video frames per second,
detection included, against real time (30 frames/s).

A video of the ``full`` preset's Aff-Wild2 (480x360 at 30 fps with sound; ``--seconds`` long, generated
first and not timed) goes through :func:`recognizer.predict_video.predict_recording` with a V+A recognizer
at 112 px, K=8, 2 s windows at 1 s stride, 64-mel log-mel (untrained weights: the cost does not depend on
them). Beside the whole run, in the same process: decoding alone, and decoding plus the detector on every
frame, so the share of each stage is measured, not guessed. ``--model default`` is the toolkit's default
model (auto stems), ``paper`` the paper's (full-resolution log-mel).
Usage: python benchmarks/predict_video.py [--seconds 30] [--model default paper] [--detector haar]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# benchmarks/recognizer.py would shadow the recognizer package: this folder goes last on the path.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

from common import machine, synth_slice  # noqa: E402

from expr_common.checkpoint import save_checkpoint  # noqa: E402
from expr_common.config import to_dict  # noqa: E402
from expr_common.data.config import PreprocessConfig  # noqa: E402
from expr_common.data.faces import detectors_for  # noqa: E402
from expr_common.media import iter_video, probe  # noqa: E402
from expr_common.paths import repo_root  # noqa: E402
from recognizer.model import AudioVisualRecognizer  # noqa: E402
from recognizer.predict_video import predict_recording  # noqa: E402
from recognizer.predictors import TorchPredictor  # noqa: E402
from recognizer.run_config import load_recognizer_config  # noqa: E402

CONFIGS = {"default": None, "paper": "configs/recognizer/paper.yaml"}
REAL_TIME = 30.0


def checkpoint(folder: Path, model: str, preprocess: PreprocessConfig) -> Path:
    path = CONFIGS[model]
    cfg = load_recognizer_config(repo_root() / path if path else None, ["data=configs/data/affwild2.yaml"])
    state = {"model": AudioVisualRecognizer(cfg.model).state_dict(), "preprocess": to_dict(preprocess)}
    return save_checkpoint(folder / f"{model}.pt", state, cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--model", nargs="+", default=["default", "paper"], choices=sorted(CONFIGS))
    parser.add_argument("--detector", nargs="+", default=["haar"])
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(dir=repo_root()) as tmp:
        synth_slice(Path(tmp) / "corpus", 2, args.seconds, 0)
        video = sorted((Path(tmp) / "corpus" / "affwild2").rglob("*.mp4"))[0]
        info = probe(video)
        started = time.perf_counter()
        frames = list(iter_video(video))
        decode_s = time.perf_counter() - started
        for detector in args.detector:
            preprocess = PreprocessConfig(frames=8, image_size=112, face_detector=detector)
            strict = detectors_for(preprocess)[0]
            started = time.perf_counter()
            found = sum(strict(f) is not None for f in frames)
            detect_s = time.perf_counter() - started
            for model in args.model:
                predictor = TorchPredictor(checkpoint(Path(tmp), model, preprocess))
                pred = predict_recording(predictor, video)
                results.append({
                    "model": model, "detector": detector, "frames": len(pred.prob),
                    "wall_s": round(pred.seconds, 2), "frames_per_s": round(len(pred.prob) / pred.seconds, 1),
                    "x_real_time": round(len(pred.prob) / pred.seconds / REAL_TIME, 2),
                    "windows": pred.windows, "detector_ms_per_frame": round(1000 * detect_s / len(frames), 2),
                    "detected_share": round(found / len(frames), 3),
                })  # fmt: skip
    print(json.dumps({
        "benchmark": "predict_video", "machine": machine(),
        "video": {"width": info.width, "height": info.height, "fps": info.fps, "frames": len(frames),
                  "has_audio": info.has_audio},
        "input": {"image_size": 112, "frames_k": 8, "window_s": 2.0, "stride_s": 1.0, "n_mels": 64},
        "decode_ms_per_frame": round(1000 * decode_s / len(frames), 2),
        "runs": results,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
