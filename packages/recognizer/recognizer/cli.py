"""``recognizer``: train, evaluate, predict, validate-submission, ablate, chain (``python -m recognizer`` is
the same; so is ``accelerate launch -m recognizer train ...``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from expr_common.checkpoint import CheckpointError
from expr_common.config import ConfigError
from expr_common.runs import add_run_arguments, open_run_dir


def _train(args: argparse.Namespace) -> int:
    from recognizer.extra_data import with_extra_flags
    from recognizer.settings import load_recognizer_config
    from recognizer.trainer import make_accelerator, train

    cfg = load_recognizer_config(args.config, args.overrides)
    cfg = with_extra_flags(
        cfg, synthetic=args.with_synthetic, synthetic_dir=args.synthetic, source_real=args.with_source_real
    )
    # Every process must agree on the run directory; the default has a timestamp, so only --run-dir or
    # the main process's choice is safe under accelerate launch: the folder is created before the
    # accelerator starts, and non-main processes of a multi-process run need --run-dir.
    run = open_run_dir(args.run_dir, "recognizer-train", resume=args.resume)
    summary = train(cfg, run, resume=args.resume, accelerator=make_accelerator(run))
    if "selection" in summary:
        sel = summary["selection"]
        print(
            f"best validation macro-F1 {summary['best_val_macro_f1']:.4f}; with fusion m={sel['m']} "
            f"n={sel['n']} and smoothing {sel['window']}: {sel['val_macro_f1']:.4f}"
        )
        print(f"run written to {run.root}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from recognizer.evaluate import evaluate

    run = open_run_dir(args.run_dir, "recognizer-evaluate")
    metrics = evaluate(
        args.checkpoint, run, data=args.data, split=args.split, select=args.select, batch_size=args.batch_size
    )
    if metrics:
        print(
            json.dumps(
                {k: metrics[k] for k in ("macro_f1", "accuracy", "frames", "fusion", "smoothing_window")},
                indent=2,
            )
        )
        print(f"metrics written to {run.eval_metrics}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recognizer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the audio-visual recognizer")
    add_run_arguments(train, config_required=True)
    train.add_argument(
        "--with-synthetic",
        action="store_true",
        help="add `gan-aug generate` samples (video only) to training under extra_policies.synthetic",
    )
    train.add_argument("--synthetic", metavar="DIR", help="the `gan-aug generate --out` folder to add")
    train.add_argument(
        "--with-source-real",
        action="store_true",
        help="add the data config's AFEW and CK+ training samples directly (the no-GAN comparison)",
    )
    train.set_defaults(func=_train)

    evaluate = sub.add_parser("evaluate", help="per-frame macro-F1 of a checkpoint on a split")
    evaluate.add_argument("--checkpoint", type=Path, required=True)
    evaluate.add_argument("--data", default=None, help="data config (default: the checkpoint's)")
    evaluate.add_argument("--split", default="val", choices=("train", "val", "test"))
    evaluate.add_argument(
        "--select",
        action="store_true",
        help="choose (m, n) and the smoothing window on this split instead of the checkpoint's",
    )
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--run-dir", type=Path, default=None)
    evaluate.set_defaults(func=_evaluate)

    from recognizer.submission import add_parsers as add_submission_parsers

    add_submission_parsers(sub)  # predict, validate-submission

    from recognizer.ablate import add_ablate_parser

    add_ablate_parser(sub)  # ablate: the paper's Table 1 over seeds

    from recognizer.chain import add_chain_arguments, chain_command

    chain = sub.add_parser(
        "chain", help="the whole demo chain (make demo): corpus -> GAN -> FID -> arms -> report"
    )
    add_chain_arguments(chain)
    chain.set_defaults(func=chain_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"recognizer {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
