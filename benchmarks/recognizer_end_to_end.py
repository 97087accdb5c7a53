"""End-to-end ``recognizer train`` throughput beside the model's own rate (issue 27, part 3).

For one prepared data config and one modality it runs ``recognizer train`` as a user does (the toolkit's
defaults, in-process loading) and reads three rates, in training samples per second:
- ``model_only``: forward + loss + backward + optimizer step of the run's own model, config and batch size
  on one real batch of the cache (no loading, no augmentation), after one warm-up step;
- ``loop``: what the progress bar shows, the training loop with loading and augmentation (the median over
  epochs of ``train_clips_per_s`` in ``metrics.jsonl``);
- ``end_to_end``: the command's wall time over every sample trained, so start-up, validation every epoch,
  the fusion and smoothing search and the checkpoints are included;
and, on the same cache and epochs, the plain reference of the real-data bench (``realbench_plain``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import yaml
from common import timed
from realbench import prepare, recognizer_run
from realbench_plain import fit_plain
from realbench_sets import SETS, data_config, write_yaml

from expr_common.data.dataset import CachedClips, normalize_video
from recognizer.losses import build_loss, recognizer_loss
from recognizer.optim import build_optimizer
from recognizer.run_config import load_recognizer_config
from recognizer.trainer import build_model

ISSUE_SETTINGS = {  # the issue's two settings on the real-data bench: 48-px wild faces, 4 s of speech
    "sfew_48px": ("sfew", {"image_size": 48}),
    "emodb_4s": ("emodb", {"window_seconds": 4.0, "stride_seconds": 4.0}),
}


def bench_data_configs(bench: Path, work: Path) -> dict[str, tuple[Path, str]]:
    """The issue's settings as data config files under ``work``: name -> (YAML, modality)."""
    out = {}
    for name, (set_name, preprocess) in ISSUE_SETTINGS.items():
        config = data_config(SETS[set_name], bench, work / "cache")
        config["preprocess"] |= preprocess
        config["cache"]["root"] = str(work / "cache" / name)
        out[name] = (write_yaml(work / "configs" / f"{name}.yaml", config), SETS[set_name].modality)
    return out


def model_only_rate(run: Path, cache: Path, steps: int) -> float:
    """Samples per second of the run's model for forward + loss + backward + step on one real batch."""
    cfg = load_recognizer_config(run / "config.yaml")
    data = CachedClips(cache, split="train", labelled_only=True)
    batch = data.__getitems__(list(range(min(cfg.train.batch_size, len(data)))))
    torch.manual_seed(0)
    model = build_model(cfg).train()
    optimizer, loss_fn = build_optimizer(model, cfg.optim), build_loss(cfg.loss)
    video = normalize_video(batch["video"]) if "v" in cfg.model.modalities else None
    audio = batch["audio"] if "a" in cfg.model.modalities else None

    def step() -> None:
        out = model(video, audio)
        loss = recognizer_loss(loss_fn, out, batch["label"], aux_weight=cfg.loss.aux_weight)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return len(batch["label"]) / timed(step, steps)


def end_to_end(data_yaml: Path, modality: str, epochs: int, work: Path, steps: int = 5) -> dict[str, Any]:
    """The three rates of ``recognizer train`` on ``data_yaml`` and the plain reference's, one seed: the
    training is the real-data bench's own (``realbench.prepare`` and ``recognizer_run``)."""
    name, bench = data_yaml.stem, argparse.Namespace(work=work, epochs=epochs, overrides=[])
    data = prepare(name, yaml.safe_load(data_yaml.read_text(encoding="utf-8")), work)
    record = recognizer_run(name, modality, data, bench, 0)
    cache, wall, loop = data[1], record["train_s"], record["loop_items_per_s"]
    n_train = len(CachedClips(cache, split="train", labelled_only=True))
    model = model_only_rate(Path(record["checkpoint"]).parents[1], cache, steps)
    plain = fit_plain(cache, modality, epochs, seed=0)
    return {
        "modality": modality,
        "train_samples": n_train,
        "epochs": epochs,
        "rates_per_s": {
            "model_only": round(model, 1),
            "loop": round(loop, 1),
            "end_to_end": round(epochs * n_train / wall, 1),
            "plain_reference": round(plain["items"] / plain["train_s"], 1),
        },
        "model_only_over_end_to_end": round(model / (epochs * n_train / wall), 2),
        "model_only_over_loop": round(model / loop, 2),
        "wall_s": round(wall, 1),
    }
