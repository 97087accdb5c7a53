"""GAN training throughput: images/s of full training steps (D phase + G phase + EMA, DiffAugment, LeCam) at
64 and 128 px, batch 16, the default widths of GanModelConfig, on whatever device this machine has.

Real batches are random tensors (the data path is benchmarked by benchmarks/data.py): this measures the
networks, losses and augmentation. One warm-up step is excluded.
Usage: python benchmarks/gan.py [--resolutions 64 128] [--batch-size 16] [--steps 3] [--d-steps 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from common import machine, peak_rss_mb  # noqa: E402

from gan_aug.config import DOMAINS, DiscriminatorConfig, GanModelConfig, GeneratorConfig  # noqa: E402
from gan_aug.networks import count_parameters  # noqa: E402
from gan_aug.run_config import GanTrainConfig, TrainLoopConfig  # noqa: E402
from gan_aug.sampling import CellSampler, FrameTable, step_generator  # noqa: E402
from gan_aug.trainer import GanTrainer  # noqa: E402


def _every_cell_table(num_classes: int) -> FrameTable:
    labels = torch.arange(num_classes).repeat_interleave(len(DOMAINS))
    domains = torch.arange(len(DOMAINS)).repeat(num_classes)
    n, frames = len(labels), torch.zeros(len(labels), dtype=torch.long)
    # No pixels (clips=None): the sampler only needs the (class, domain) of each row.
    return FrameTable(None, torch.arange(n), frames, labels, domains, labels, domains, num_classes)  # type: ignore[arg-type]


def measure(
    resolution: int, batch_size: int, steps: int, d_steps: int, accelerator: Accelerator, width: int = 32
) -> dict:
    model = GanModelConfig(
        generator=GeneratorConfig(resolution=resolution, width=width),
        discriminator=DiscriminatorConfig(resolution=resolution, width=width),
    )
    config = GanTrainConfig(model=model, train=TrainLoopConfig(batch_size=batch_size, d_steps=d_steps))
    sampler = CellSampler(_every_cell_table(model.num_classes))
    trainer = GanTrainer(config, accelerator, sampler)
    gen = step_generator(0, 0)
    batch = {
        "image": torch.rand(batch_size, 3, resolution, resolution, generator=gen) * 2 - 1,
        "label": torch.randint(model.num_classes, (batch_size,), generator=gen),
        "domain": torch.randint(len(DOMAINS), (batch_size,), generator=gen),
    }

    def step() -> None:
        for _ in range(d_steps):
            assert trainer.d_phase(batch, gen) is not None
        assert trainer.g_phase(batch_size, gen) is not None
        trainer.ema_phase(batch_size)

    step()  # warm-up: allocator, oneDNN/cuDNN kernel selection
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    return {
        "resolution": resolution,
        "width": width,
        "g_params_m": round(count_parameters(trainer.generator_ema) / 1e6, 2),
        "d_params_m": round(count_parameters(accelerator.unwrap_model(trainer.D)) / 1e6, 2),
        "s_per_step": round(wall / steps, 3),
        "images_per_s": round(steps * d_steps * batch_size / wall, 2),  # real images through D, as in metrics
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--d-steps", type=int, default=1)
    parser.add_argument("--width", type=int, default=32, help="G and D width (default: GanModelConfig's)")
    args = parser.parse_args()
    os.environ.setdefault("EXPR_PROGRESS", "0")
    torch.manual_seed(0)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    results = [
        measure(r, args.batch_size, args.steps, args.d_steps, accelerator, args.width)
        for r in args.resolutions
    ]
    print(
        json.dumps(
            {
                "benchmark": "gan_train",
                "machine": machine() | {"torch_threads": torch.get_num_threads()},
                "config": {"batch_size": args.batch_size, "steps": args.steps, "d_steps": args.d_steps}
                | {"width": args.width, "channel_multipliers": "defaults of gan_aug.config"},
                "results": {f"{r['resolution']}px": r for r in results},
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "peak_cuda_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)
                if torch.cuda.is_available()
                else None,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
