"""Train the class- and domain-conditional GAN on the prepared caches (AFEW, CK+, Aff-Wild2 frames).

    accelerate launch packages/gan_aug/gan_aug/train.py --config configs/gan_aug/demo.yaml --run-dir runs/gan
    gan-aug train --config configs/gan_aug/tiny.yaml --run-dir runs/gan-tiny [--resume] [--set train.steps=10]

Writes the run contract: config.yaml, metrics.jsonl, tb/, checkpoints/last.pt (+ best.pt with an FID hook),
samples/*.png. Hardware and precision come from ``accelerate`` flags (``--mixed_precision bf16``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from accelerate.utils import broadcast_object_list

from expr_common import subcommands
from expr_common.accelerator import make_accelerator
from expr_common.config import ConfigError
from expr_common.runs import RunDir, add_run_arguments, default_run_dir, resume_note
from expr_common.synth import ondemand
from gan_aug.run_config import load_train_config
from gan_aug.training import COMMAND, train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """``gan-aug train`` and this script's entry: on --resume without --config, the run's own config."""
    if args.config is None and not (args.resume and args.run_dir is not None):
        raise ConfigError("--config is required (or --resume --run-dir DIR, which reuses DIR/config.yaml)")
    config_path = args.config if args.config is not None else RunDir(args.run_dir).config
    config = load_train_config(config_path, args.overrides)
    run_dir = args.run_dir if args.run_dir is not None else default_run_dir(COMMAND)
    accelerator = make_accelerator(run_dir)
    # A default run dir is a timestamp: every process must use the main process's.
    run_dir = Path(broadcast_object_list([str(run_dir)])[0])
    args.run_dir = run_dir  # for stop_note
    result = train(config, run_dir, resume=args.resume, accelerator=accelerator, overwrite=args.overwrite)
    if accelerator.is_main_process:
        print(f"trained {result.steps} steps; last checkpoint {result.run.last_checkpoint}")
        if result.grids:
            print(f"sample grids: {', '.join(str(p) for p in result.grids)}")
    return 0


def stop_note(args: argparse.Namespace) -> str | None:
    """Where an interrupted run stands: its last checkpoint and the line that continues it."""
    return resume_note(args, "gan-aug train")


def main(argv: list[str] | None = None) -> int:
    ondemand.enable()  # `accelerate launch .../train.py` is a command line too
    parser = argparse.ArgumentParser(prog="train.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return subcommands.run_module("gan-aug", "train", sys.modules[__name__], parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
