"""MCNN (the audio branch) alone at the paper's audio settings: 64 mels, 10 ms hop, 4 s windows
([B, 1, 64, 401]), the paper's widths (32, 64): training clips/s (forward, backward, SGD step on the branch
and its head) and inference clips/s, GFLOPs per clip, for each ``audio.stem_pool`` asked for, measured in
the same process; the first one given is the reference of the speed ratios.
Budgets (issue 15, part 4): training >= 40 clips/s, inference >= 200 clips/s on the 2-core machine.
Usage: python benchmarks/audio_branch.py [--stem-pools 1x1 2x4 2x2] [--batch-size 16] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

# benchmarks/recognizer.py shares its name with the recognizer package: move this folder to the end of the
# path so that "import recognizer" imports the package (common.py still loads), as that script does.
_HERE = Path(__file__).resolve().parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

import torch  # noqa: E402
from common import machine, peak_rss_mb, timed  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from recognizer.config import AudioConfig  # noqa: E402
from recognizer.mcnn import MCNN  # noqa: E402
from recognizer.model import classifier_head  # noqa: E402

MELS, STEPS_4S = 64, 401  # 4 s at a 10 ms hop (centred frames): the setting


def measure(stem: tuple[int, int], batch: int, eval_batch: int, steps: int) -> dict:
    cfg = replace(AudioConfig(), branch_widths=(32, 64), stem_pool=stem)
    torch.manual_seed(0)
    net, head = MCNN(cfg), classifier_head(cfg.out_dim, 8, cfg.dropout)
    params = list(net.parameters()) + list(head.parameters())
    optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    audio, labels = torch.randn(batch, 1, MELS, STEPS_4S), torch.randint(0, 8, (batch,))

    def train_step() -> None:
        loss = torch.nn.functional.cross_entropy(head(net(audio)), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    net.train()
    train_s = timed(train_step, steps)
    net.eval()
    windows = torch.randn(eval_batch, 1, MELS, STEPS_4S)

    @torch.inference_mode()
    def infer() -> None:
        head(net(windows)).argmax(1)

    infer_s = timed(infer, steps)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        net(windows[:1])
    return {
        "stem_pool": list(stem),
        "params": sum(p.numel() for p in params),
        "gflops_per_clip": round(counter.get_total_flops() / 1e9, 3),
        "train_clips_per_s": round(batch / train_s, 2),
        "infer_clips_per_s": round(eval_batch / infer_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stem-pools", nargs="+", default=["1x1", "2x4"], help="FREQxTIME factors")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    stems = [tuple(int(x) for x in s.split("x")) for s in args.stem_pools]
    rows = [measure(s, args.batch_size, args.eval_batch_size, args.steps) for s in stems]
    ref = rows[0]
    for row in rows:
        row["train_speedup"] = round(row["train_clips_per_s"] / ref["train_clips_per_s"], 2)
        row["infer_speedup"] = round(row["infer_clips_per_s"] / ref["infer_clips_per_s"], 2)
    print(json.dumps({
        "benchmark": "audio_branch",
        "machine": machine() | {"threads": torch.get_num_threads()},
        "config": {"mels": MELS, "steps": STEPS_4S, "branch_widths": [32, 64], "batch_size": args.batch_size},
        "results": rows,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
