"""Both trainers' steps under accelerate's bf16 autocast on the CPU, in a fresh process (accelerate's
precision is process-wide state): prints JSON with the dtypes the losses and logged statistics come out in.

    ACCELERATE_USE_CPU=true python tests/multiproc/mixed_precision.py CACHE RUN_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from accelerate import Accelerator

from expr_common.paths import repo_root
from expr_common.runs import RunDir, read_metrics


def main(cache: Path, out: Path) -> dict:
    import recognizer.trainer as trainer
    from gan_aug.run_config import load_train_config
    from gan_aug.training import train as train_gan
    from recognizer.run_config import load_recognizer_config

    accelerator = Accelerator(cpu=True, mixed_precision="bf16")
    seen: dict[str, set[str]] = {
        k: set() for k in ("recognizer_convs", "recognizer_outputs", "recognizer_losses")
    }
    loss, build = trainer.recognizer_loss, trainer.build_model

    def building(cfg):  # autocast reaches the convolutions: they compute in bf16
        model = build(cfg)
        _record_convs(model, seen["recognizer_convs"])
        return model

    def recording(loss_fn, out_, *args, **kwargs):
        seen["recognizer_outputs"].update(str(v.dtype) for v in out_.values() if torch.is_tensor(v))
        parts = loss(loss_fn, out_, *args, **kwargs)
        seen["recognizer_losses"].update(str(v.dtype) for v in parts.values())
        return parts

    trainer.recognizer_loss, trainer.build_model = recording, building
    overrides = [f"data_overrides=[cache.root={cache}]", "train.epochs=1", "train.max_steps_per_epoch=2"]
    cfg = load_recognizer_config(repo_root() / "configs" / "recognizer" / "tiny.yaml", overrides)
    run = RunDir(out / "recognizer")
    trainer.train(cfg, run, accelerator=accelerator)

    import gan_aug.trainer as gan_trainer
    import gan_aug.training as gan_train

    reduce_stats, build_networks = gan_train.reduce_stats, gan_trainer.build_networks
    seen["gan_stats"], seen["gan_convs"] = set(), set()

    def building_networks(model):
        G, D = build_networks(model)
        _record_convs(G, seen["gan_convs"])
        _record_convs(D, seen["gan_convs"])
        return G, D

    def recording_stats(acc, stats):  # a step's D and G statistics, before they are logged
        seen["gan_stats"].update(str(v.dtype) for v in stats.values())
        return reduce_stats(acc, stats)

    gan_train.reduce_stats, gan_trainer.build_networks = recording_stats, building_networks
    config = load_train_config(repo_root() / "configs" / "gan_aug" / "tiny.yaml", ["train.steps=2"])
    config.data_overrides = [f"cache.root={cache}"]
    train_gan(config, out / "gan", accelerator=accelerator)
    return {
        "mixed_precision": accelerator.mixed_precision,
        **{k: sorted(v) for k, v in seen.items()},
        "recognizer_val_macro_f1": read_metrics(run.metrics)[-1]["val_macro_f1"],
        "gan_last": read_metrics(out / "gan" / "metrics.jsonl")[-1],
    }


def _record_convs(model: torch.nn.Module, seen: set[str]) -> None:
    for conv in (m for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
        conv.register_forward_hook(lambda module, args, out: seen.add(str(out.dtype)))


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]))))
