"""``expr-experiment fidelity``: per class, the rate at which a recognizer trained on real target data
recognises the synthetic samples of that class, beside its rate on real data
(:mod:`expr_experiment.fidelity`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from expr_common.logs import get_logger
from expr_common.paths import cli_path
from expr_common.subcommands import positive_int
from expr_experiment.fidelity import FACES, run_fidelity
from expr_experiment.layout import FIDELITY_JSON, REAL_CONFUSION, SYNTH_CONFUSION

log = get_logger("experiment.fidelity")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--checkpoint", type=Path, required=True, help="recognizer checkpoint trained on real target data")
    add(
        "--synthetic",
        type=Path,
        required=True,
        help="gan-aug generate output (folder or manifest CSV) or a cache",
    )
    add(
        "--real",
        type=Path,
        default=None,
        help="real data: a data config YAML or a prepared cache (default: the checkpoint's data config)",
    )
    add("--split", default="val", choices=("train", "val", "test"), help="real split to compare with")
    add(
        "--real-sources", default=None, help="comma-separated sources (default: the checkpoint's val_sources)"
    )
    add(
        "--faces", choices=FACES, default="auto", help="face handling of synthetic frames, as in data configs"
    )
    add(
        "--out",
        type=Path,
        required=True,
        help=f"output folder: {FIDELITY_JSON}, {SYNTH_CONFUSION}, {REAL_CONFUSION}",
    )
    add(
        "--keep-recognised",
        type=cli_path,
        default=None,
        metavar="DIR",
        help="also write DIR/manifest.csv of the samples the recognizer names by their own class, and "
        "DIR/filter.json (per class: made, kept)",
    )
    add("--batch-size", type=positive_int, default=64)
    add("--device", default=None, help="cuda, cpu (default: cuda if available)")


def run(args: argparse.Namespace) -> int:
    sources = [s.strip() for s in args.real_sources.split(",") if s.strip()] if args.real_sources else None
    report = run_fidelity(
        args.checkpoint,
        args.synthetic,
        args.out,
        real=args.real,
        split=args.split,
        real_sources=sources,
        faces=args.faces,
        batch_size=args.batch_size,
        device=args.device,
        keep=args.keep_recognised,
    )
    for warning in report["warnings"]:
        log.warning(warning)
    edits = "kept_source_rate" in report["overall"]
    print(
        f"{'class':<10} {'n_synth':>7} {'synth':>6} {'n_real':>7} {'real':>6}" + (" source" if edits else "")
    )
    for name, c in report["classes"].items():
        keys = ("synth_recall", "real_recall", "kept_source_rate")
        rates = [f"{c[k]:6.3f}" if c.get(k) is not None else f"{'-':>6}" for k in keys]
        tail = f" {rates[2]}" if edits else ""
        print(f"{name:<10} {c['n_synth']:>7} {rates[0]} {c['n_real']:>7} {rates[1]}{tail}")
    if "filter" in report:
        kept = report["filter"]
        print(f"kept {kept['kept']} of {kept['made']} samples in {args.keep_recognised}")
    print(f"written to {args.out}")
    return 0
