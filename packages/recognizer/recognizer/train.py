"""``recognizer train``: train the audio-visual recognizer (``recognizer/trainer.py``) into a run folder.

recognizer train --config configs/recognizer/tiny.yaml --run-dir runs/rec [--resume] [--with-synthetic]
accelerate launch -m recognizer train --config ... --run-dir runs/rec
"""

from __future__ import annotations

import argparse
import json
import sys

from expr_common.accelerator import agree_on_run_dir, make_accelerator
from expr_common.errors import RunDirError
from expr_common.paths import cli_path
from expr_common.runs import add_run_arguments, default_run_dir, resume_note


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser, config_required=True)
    parser.add_argument(
        "--with-synthetic",
        action="store_true",
        help="add `gan-aug generate` samples (video only) to training under extra_policies.synthetic",
    )
    parser.add_argument(
        "--synthetic", type=cli_path, metavar="DIR", help="the `gan-aug generate --out` folder to add"
    )
    parser.add_argument(
        "--init-from",
        type=cli_path,
        metavar="CKPT",
        default=None,
        help="start from the matching branches and heads of this recognizer checkpoint (pre-training)",
    )
    parser.add_argument(
        "--with-source-real",
        action="store_true",
        help="add the data config's AFEW and CK+ training samples directly (the no-GAN comparison)",
    )
    parser.add_argument(
        "--with-augmented-copies",
        action="store_true",
        help="add copies of the training faces, augmented afresh, under the synthetic policy: as many per "
        "class as --with-synthetic adds (the classic-augmentation control)",
    )


def run(args: argparse.Namespace) -> int:
    from recognizer.extra_data import with_extra_flags
    from recognizer.run_config import load_recognizer_config
    from recognizer.trainer import train

    init = [f"train.init_from={json.dumps(str(args.init_from))}"] if args.init_from else []
    cfg = load_recognizer_config(args.config, [*args.overrides, *init])
    cfg = with_extra_flags(
        cfg,
        synthetic=args.with_synthetic,
        synthetic_dir=args.synthetic,
        source_real=args.with_source_real,
        augmented=args.with_augmented_copies,
    )

    # Every process must agree on the run directory; the default has a timestamp, so only --run-dir or
    # the main process's choice is safe under accelerate launch: the folder is created before the
    # accelerator starts, and non-main processes of a multi-process run need --run-dir.
    # Every process must agree on the run directory (the default has a timestamp): the main process
    # chooses it, looks into it and tells the others.
    if args.resume and args.run_dir is None:
        raise RunDirError("--resume needs --run-dir: the run directory to continue")
    chosen = args.run_dir if args.run_dir is not None else default_run_dir("recognizer-train")
    accelerator = make_accelerator(chosen)  # its TensorBoard folder is the main process's choice too
    run_dir = agree_on_run_dir(
        accelerator, chosen, "recognizer-train", resume=args.resume, overwrite=args.overwrite
    )
    args.run_dir = run_dir.root  # for stop_note: the folder a Ctrl-C or a full disk leaves behind
    summary = train(cfg, run_dir, resume=args.resume, accelerator=accelerator)
    if "selection" in summary:
        sel = summary["selection"]
        print(
            f"best validation macro-F1 {summary['best_val_macro_f1']:.4f}; with fusion m={sel['m']} "
            f"n={sel['n']} and smoothing {sel['window']}: {sel['val_macro_f1']:.4f}"
        )
        print(f"run written to {run_dir.root}")
    return 0


def stop_note(args: argparse.Namespace) -> str | None:
    """Where an interrupted run stands: its last checkpoint and the line that continues it."""
    flags = ["--with-synthetic"] if args.with_synthetic else []
    flags += ["--synthetic", str(args.synthetic)] if args.synthetic else []
    flags += ["--with-source-real"] if args.with_source_real else []
    flags += ["--with-augmented-copies"] if args.with_augmented_copies else []
    flags += ["--init-from", str(args.init_from)] if args.init_from else []
    return resume_note(args, "recognizer train", flags)


if __name__ == "__main__":  # accelerate launch packages/recognizer/recognizer/train.py --config ...
    from expr_common import subcommands

    parser = argparse.ArgumentParser(prog="train.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(subcommands.run_module("recognizer", "train", sys.modules[__name__], parser.parse_args()))
