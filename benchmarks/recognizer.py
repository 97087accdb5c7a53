"""Recognizer speed on the CPU: training clips/s, per-frame inference frames/s, parameters and GFLOPs per
branch, for the model configs of configs/recognizer/demo.yaml (64 px) and paper.yaml (112 px).

Inputs are synthetic random tensors of the cached shapes (video [B, K, 3, S, S], audio [B, 1, 64, 201]):
this measures the networks (the data path is benchmarked by benchmarks/data.py). One warm-up iteration is
excluded from every timing. The budget (DESIGN/issue 4): inference >= 100 frames/s at 112 px on 2 cores.
Usage: python benchmarks/recognizer.py [--configs demo paper] [--batch-size 16] [--steps 3]

``--end-to-end`` adds what ``recognizer train`` itself reaches beside the model's own rate
(recognizer_end_to_end.py): on the real-data bench's 48-px SFEW faces and 4 s EmoDB speech (``--bench
DIR``, the bench's folder) or on any prepared data config (``--data YAML --modalities v``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# This file shares its name with the recognizer package: Python puts the script's folder first on the path,
# which would make "import recognizer" import this script. Move the folder to the end (common.py still loads).
_HERE = Path(__file__).resolve().parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

import torch  # noqa: E402
from common import machine, peak_rss_mb, timed  # noqa: E402
from recognizer_end_to_end import bench_data_configs, end_to_end  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from expr_common.data.dataset import normalize_video  # noqa: E402
from expr_common.paths import repo_root  # noqa: E402
from recognizer.losses import build_loss, recognizer_loss  # noqa: E402
from recognizer.optim import build_optimizer  # noqa: E402
from recognizer.run_config import load_recognizer_config  # noqa: E402
from recognizer.trainer import build_model  # noqa: E402

SIZES = {"demo": 64, "paper": 112}  # face-crop size each config is trained at
BUDGET_FRAMES_PER_S = 100.0
FPS, WINDOW_S, STRIDE_S = 30, 2.0, 1.0  # default windows: 2 s long at 1 s stride of 30 fps video
STRIDE_FRAMES = int(
    FPS * STRIDE_S
)  # new frames each window adds; every frame lies in WINDOW_S/STRIDE_S windows


def _batch(batch_size: int, frames: int, size: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "video": torch.randint(0, 256, (batch_size, frames, 3, size, size), dtype=torch.uint8, generator=gen),
        "audio": torch.randn(batch_size, 1, 64, 201, generator=gen),
        "label": torch.randint(0, 8, (batch_size,), generator=gen),
    }


def _params(*modules: torch.nn.Module | None) -> int:
    return sum(p.numel() for m in modules if m is not None for p in m.parameters())


def _gflops(fn) -> float:
    with FlopCounterMode(display=False) as counter:  # counts a multiply-add as 2 FLOPs
        fn()
    return counter.get_total_flops() / 1e9


def measure(name: str, batch_size: int, frames: int, steps: int, eval_batch_size: int) -> dict:
    cfg = load_recognizer_config(repo_root() / "configs" / "recognizer" / f"{name}.yaml")
    size = SIZES[name]
    gen = torch.Generator().manual_seed(0)
    model = build_model(cfg)
    optimizer = build_optimizer(model, cfg.optim)
    loss_fn = build_loss(cfg.loss)
    batch = _batch(batch_size, frames, size, gen)

    def train_step() -> None:
        out = model(normalize_video(batch["video"]), batch["audio"])
        loss = recognizer_loss(loss_fn, out, batch["label"], aux_weight=cfg.loss.aux_weight)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    model.train()
    train_s = timed(train_step, steps)

    model.eval()
    windows = _batch(eval_batch_size, frames, size, gen)

    @torch.inference_mode()
    def infer() -> None:
        model(normalize_video(windows["video"]), windows["audio"])["prob"].argmax(1)

    infer_s = timed(infer, steps)
    windows_per_s = eval_batch_size / infer_s
    one_video = normalize_video(windows["video"][:1])
    one_audio = windows["audio"][:1]
    with torch.inference_mode():
        gflops_v = _gflops(lambda: model.head_v(model.visual(one_video)))
        gflops_a = _gflops(lambda: model.head_a(model.audio(one_audio)))
    frames_per_s = windows_per_s * STRIDE_FRAMES
    return {
        "face_px": size,
        "frames_per_clip": frames,
        "params": {
            "visual": _params(model.visual, model.head_v),
            "audio": _params(model.audio, model.head_a),
            "total": _params(model),
        },
        "gflops_per_clip": {"visual": round(gflops_v, 3), "audio": round(gflops_a, 3)},
        "train_s_per_step": round(train_s, 3),
        "train_clips_per_s": round(batch_size / train_s, 2),
        "infer_windows_per_s": round(windows_per_s, 2),
        "infer_frames_per_s": round(frames_per_s, 1),
    }


def end_to_end_results(args: argparse.Namespace) -> dict:
    if (args.bench is None) == (args.data is None):
        raise SystemExit("--end-to-end takes --bench DIR (the real-data bench) or --data YAML, not both")
    if args.bench is not None:
        settings = bench_data_configs(args.bench, args.work)
    else:
        settings = {args.data.stem: (args.data, args.modalities)}
    started = time.perf_counter()
    results = {n: end_to_end(yaml, mod, args.epochs, args.work) for n, (yaml, mod) in settings.items()}
    return {
        "benchmark": "recognizer_end_to_end_cpu",
        "machine": machine() | {"torch_threads": torch.get_num_threads()},
        "config": {"recognizer": "the toolkit's defaults, train.workers 0", "epochs": args.epochs},
        "goal": "model_only_over_end_to_end <= 1.5; V at 48 px >= the plain CNN; A at 4 s >= 75 clips/s",
        "results": results,
        "wall_s": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configs", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--batch-size", type=int, default=16, help="training batch (the paper's 16)")
    parser.add_argument("--eval-batch-size", type=int, default=16, help="windows per inference batch")
    parser.add_argument("--frames", type=int, default=8, help="K frames per window")
    parser.add_argument("--steps", type=int, default=3, help="timed iterations after one warm-up")
    parser.add_argument("--end-to-end", action="store_true", help="recognizer train's own throughput")
    parser.add_argument("--bench", type=Path, help="end-to-end on the real-data bench's folder")
    parser.add_argument("--data", type=Path, help="end-to-end on this data config instead")
    parser.add_argument("--modalities", default="v", choices=["v", "a", "av"], help="with --data")
    parser.add_argument("--epochs", type=int, default=3, help="end-to-end training epochs")
    parser.add_argument("--work", type=Path, default=repo_root() / "runs" / "bench_end_to_end")
    args = parser.parse_args()
    os.environ.setdefault("EXPR_PROGRESS", "0")
    torch.manual_seed(0)
    if args.end_to_end:
        print(json.dumps(end_to_end_results(args), indent=2))
        return
    started = time.perf_counter()
    results = {
        n: measure(n, args.batch_size, args.frames, args.steps, args.eval_batch_size) for n in args.configs
    }
    paper = results.get("paper")
    print(
        json.dumps(
            {
                "benchmark": "recognizer_cpu",
                "machine": machine() | {"torch_threads": torch.get_num_threads()},
                "config": {
                    "batch_size": args.batch_size,
                    "eval_batch_size": args.eval_batch_size,
                    "frames_per_clip": args.frames,
                    "audio_shape": [1, 64, 201],
                    "steps": args.steps,
                    "models": "model sections of configs/recognizer/{demo,paper}.yaml, modalities av",
                    "train_step": "forward + loss (config's) + backward + SGD step",
                },
                "frames_per_s_formula": (
                    f"infer_frames_per_s = infer_windows_per_s * stride_frames ({STRIDE_FRAMES}): "
                    f"{WINDOW_S:g} s windows at {STRIDE_S:g} s stride of {FPS} fps video each cover "
                    f"{int(FPS * WINDOW_S)} frames and every frame is in {int(WINDOW_S / STRIDE_S)} windows"
                ),
                "results": results,
                "budget": {
                    "infer_frames_per_s_min_at_112px": BUDGET_FRAMES_PER_S,
                    "met": None if paper is None else paper["infer_frames_per_s"] >= BUDGET_FRAMES_PER_S,
                },
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "wall_s": round(time.perf_counter() - started, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
