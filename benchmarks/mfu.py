"""Model FLOPs utilisation (MFU) of both trainers' training steps on this machine.

Peak: the best FLOP/s of a large square matmul (float32 on the CPU, bf16 on CUDA): what this device does at
its best, measured, not a datasheet figure. Per config (recognizer demo + paper, GAN demo + base128): the
model FLOPs of one training step, counted by torch.utils.flop_counter.FlopCounterMode on the untimed
warm-up step (forward + backward; matmuls and convolutions, a multiply-add = 2 FLOPs; optimizer,
augmentation and elementwise work are not model FLOPs; every step does the same work: the GAN configs have
R1 off), times the timed steps, divided by their wall time: achieved FLOP/s, and MFU = achieved / peak,
with the peak measured again just before each config.
The steps are the trainers' own: the recognizer's forward + coarse-fine loss + backward + clipped SGD step
under accelerate's autocast, the GAN's `training_step` (d_steps D phases, a G phase, the EMA update); on
CUDA with bf16 autocast and channels_last (the trainers' CUDA defaults).
Inputs are random tensors of the cached shapes (the data path is benchmarks/data.py's subject).

A recognizer sample is one clip (K frames + its log-mel); a GAN sample is one real image through D
(batch_size x d_steps per step; G's fakes and the G phase are part of that sample's cost).
Usage: python benchmarks/mfu.py [--steps 2] [--batch-size N] [--configs recognizer_demo ...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]  # see recognizer.py

import torch  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from common import machine, peak_rss_mb  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from expr_common.data.config import load_data_config  # noqa: E402
from expr_common.data.dataset import normalize_video  # noqa: E402
from expr_common.paths import repo_root, resolve_path  # noqa: E402
from gan_aug.config import DOMAINS  # noqa: E402
from gan_aug.run_config import load_train_config  # noqa: E402
from gan_aug.sampling import CellSampler, FrameTable  # noqa: E402
from gan_aug.trainer import GanTrainer  # noqa: E402
from gan_aug.training import training_step  # noqa: E402
from recognizer.losses import build_loss, recognizer_loss  # noqa: E402
from recognizer.optim import build_optimizer  # noqa: E402
from recognizer.run_config import load_recognizer_config  # noqa: E402
from recognizer.trainer import build_model, prepare_for_device  # noqa: E402

CONFIGS = {
    "recognizer_demo": ("recognizer", "configs/recognizer/demo.yaml"),
    "recognizer_paper": ("recognizer", "configs/recognizer/paper.yaml"),
    "gan_demo": ("gan", "configs/gan_aug/demo.yaml"),
    "gan_base128": ("gan", "configs/gan_aug/base128.yaml"),
}
# CPU batches: the configs' own batches would take minutes a step on a laptop (base128: ~110 GFLOP per
# real image, the paper recognizer ~17 GFLOP per clip); on CUDA every config runs at its own batch size.
CPU_BATCH = {"recognizer_demo": 8, "recognizer_paper": 2, "gan_demo": 8, "gan_base128": 1}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, n: int, repeats: int) -> dict:
    """Best FLOP/s of an n x n matmul (float32 on CPU, bf16 on CUDA) over ``repeats`` timed runs."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    a @ b  # warm-up: BLAS / cuBLAS kernel choice and threads
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return {"dtype": str(dtype).removeprefix("torch."), "flop_per_s": 2 * n**3 / best}


def timed_and_counted(step: Callable[[], None], steps: int, device: torch.device) -> tuple[float, int]:
    """Wall seconds of ``steps`` steps and their model FLOPs (those of the warm-up step, times ``steps``)."""
    with FlopCounterMode(display=False) as counter:
        step()  # warm-up: allocator, oneDNN / cuDNN algorithm choice; not timed
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return time.perf_counter() - start, counter.get_total_flops() * steps


def recognizer_case(name: str, path: str, accelerator: Accelerator, steps: int, batch: int | None) -> dict:
    cfg = load_recognizer_config(repo_root() / path)
    pre = load_data_config(resolve_path(cfg.data), cfg.data_overrides).preprocess
    B = batch or (cfg.train.batch_size if accelerator.device.type == "cuda" else CPU_BATCH[name])
    device = accelerator.device
    model = prepare_for_device(build_model(cfg), cfg.train, device)
    optimizer = build_optimizer(model, cfg.optim)
    model, optimizer = accelerator.prepare(model, optimizer)
    loss_fn = build_loss(cfg.loss).to(device)
    gen = torch.Generator().manual_seed(0)
    shape = (B, pre.frames, 3, pre.image_size, pre.image_size)
    video = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen).to(device)
    audio = torch.randn(B, 1, pre.n_mels, pre.mel_steps, generator=gen).to(device)
    label = torch.randint(0, cfg.model.num_classes, (B,), generator=gen).to(device)
    present = torch.ones(B, dtype=torch.bool, device=device)
    model.train()

    def step() -> None:  # the trainer's step (recognizer/trainer.py)
        with accelerator.autocast():
            out = model(normalize_video(video), audio, present, present)
            loss = recognizer_loss(loss_fn, out, label, present, present, cfg.loss.aux_weight)["loss"]
        accelerator.backward(loss)
        if cfg.optim.grad_clip > 0:
            accelerator.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    wall, flops = timed_and_counted(step, steps, device)
    return {
        "batch_size": B,
        "sample": f"clip: {pre.frames} frames of {pre.image_size} px + log-mel [1, {pre.n_mels}, T]",
        "mel_steps_T": pre.mel_steps,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        **_figures(flops, wall, steps, B),
    }


def _every_cell_table(num_classes: int) -> FrameTable:
    """A frame table with one row per (class, domain) and no pixels: the sampler only needs the cells."""
    labels = torch.arange(num_classes).repeat_interleave(len(DOMAINS))
    domains = torch.arange(len(DOMAINS)).repeat(num_classes)
    rows, frames = torch.arange(len(labels)), torch.zeros(len(labels), dtype=torch.long)
    return FrameTable(None, rows, frames, labels, domains, labels, domains, num_classes)  # type: ignore[arg-type]


def gan_case(name: str, path: str, accelerator: Accelerator, steps: int, batch: int | None) -> dict:
    config = load_train_config(repo_root() / path)
    loop, model = config.train, config.model
    loop.batch_size = batch or (loop.batch_size if accelerator.device.type == "cuda" else CPU_BATCH[name])
    R, B = model.generator.resolution, loop.batch_size
    trainer = GanTrainer(config, accelerator, CellSampler(_every_cell_table(model.num_classes)))
    gen = torch.Generator().manual_seed(0)
    real = {
        "image": torch.rand(B, 3, R, R, generator=gen) * 2 - 1,
        "label": torch.randint(model.num_classes, (B,), generator=gen),
        "domain": torch.randint(len(DOMAINS), (B,), generator=gen),
    }
    loader = itertools.repeat(real)

    def step() -> None:  # the trainer's step (gan_aug/training.py)
        assert training_step(trainer, loader, config) is not None
        trainer.step += 1

    wall, flops = timed_and_counted(step, steps, accelerator.device)
    unwrap = accelerator.unwrap_model
    return {
        "batch_size": B,
        "d_steps": loop.d_steps,
        "r1_gamma": model.loss.r1_gamma,  # 0: no step has R1's extra double-backward work
        "sample": f"real {R} px image through D ({B} x {loop.d_steps} per step)",
        "params_m": {
            "G": round(sum(p.numel() for p in unwrap(trainer.G).parameters()) / 1e6, 3),
            "D": round(sum(p.numel() for p in unwrap(trainer.D).parameters()) / 1e6, 3),
        },
        **_figures(flops, wall, steps, B * loop.d_steps),
    }


def _figures(flops: int, wall: float, steps: int, samples_per_step: int) -> dict:
    return {
        "steps": steps,
        "s_per_step": round(wall / steps, 4),
        "samples_per_s": round(steps * samples_per_step / wall, 2),
        "model_flop_per_step": flops // steps,
        "model_flop_per_sample": flops // (steps * samples_per_step),
        "achieved_flop_per_s": flops / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--steps", type=int, default=2, help="timed training steps per config")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the config's (CPU: small)")
    parser.add_argument("--matmul-n", type=int, default=None, help="peak matmul size (CPU 2048, CUDA 8192)")
    args = parser.parse_args()
    os.environ.setdefault("EXPR_PROGRESS", "0")
    started = time.perf_counter()
    cuda = torch.cuda.is_available()
    # bf16 autocast on CUDA (the shipped accelerate configs' precision); float32 on the CPU.
    accelerator = Accelerator(cpu=not cuda, mixed_precision="bf16" if cuda else "no")
    device = accelerator.device
    n = args.matmul_n or (8192 if cuda else 2048)
    results, peaks = {}, []
    for name in args.configs:
        kind, path = CONFIGS[name]
        # The peak is measured next to each config: on a shared machine the cores one gets change by the
        # minute (this benchmark has seen the same CPU matmul at 57 and 189 GFLOP/s an hour apart).
        peak = matmul_peak(device, n, repeats=10 if cuda else 5)
        peaks.append(peak["flop_per_s"])
        torch.manual_seed(0)
        case = recognizer_case if kind == "recognizer" else gan_case
        result = case(name, path, accelerator, args.steps, args.batch_size)
        result["peak_flop_per_s"] = round(peak["flop_per_s"])
        result["mfu"] = round(result["achieved_flop_per_s"] / peak["flop_per_s"], 4)
        result["achieved_flop_per_s"] = round(result["achieved_flop_per_s"])
        results[name] = {"config": path, **result}
    print(
        json.dumps(
            {
                "benchmark": "mfu",
                "machine": machine() | {"torch_threads": torch.get_num_threads()},
                "config": {
                    "steps": args.steps,
                    "mixed_precision": accelerator.mixed_precision,
                    "channels_last": "trainers' default (CUDA only)",
                    "flops": "FlopCounterMode on the warm-up step: forward + backward, 2 per multiply-add",
                },
                "peak": {
                    "matmul": f"{n} x {n} @ {n} x {n}, {peak['dtype']}, best of its runs",
                    "flop_per_s_min": round(min(peaks)),
                    "flop_per_s_max": round(max(peaks)),
                },
                "results": results,
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "peak_cuda_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
                "wall_s": round(time.perf_counter() - started, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
