"""``expr-data synth``: write the procedural corpus (``expr_common.synth``) in the datasets' own layouts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from expr_common.config import apply_overrides, from_dict, to_dict
from expr_common.runs import add_override_argument
from expr_common.subcommands import positive_int
from expr_common.synth.presets import PRESET_NAMES, SynthConfig, preset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (gets ckplus/, afew/, affwild2/)"
    )
    parser.add_argument("--preset", choices=PRESET_NAMES, default="demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workers", type=positive_int, default=None, help="rendering processes (default: the preset's)"
    )
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument(
        "--reuse", action="store_true", help="keep --out if it holds this very corpus (else rebuild it)"
    )
    add_override_argument(parser, "affwild2.train_videos=20")


def run(args: argparse.Namespace) -> int:
    from expr_common.synth.corpus import CORPUS_INFO, format_summary, generate

    config = preset(args.preset, args.seed)
    if args.overrides:
        data = apply_overrides(to_dict(config), args.overrides)
        config = from_dict(data, SynthConfig, f"preset {args.preset} (with --set {' '.join(args.overrides)})")
    if args.workers is not None:
        config.workers = args.workers
    existing = Path(args.out) / CORPUS_INFO
    if args.reuse and existing.is_file():
        try:
            summary = json.loads(existing.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # torn or edited by hand: not this corpus for sure
            summary = {}
        if isinstance(summary, dict) and summary.get("config") == to_dict(config):
            print(format_summary(summary))
            print(f"corpus reused from {args.out} (same preset, seed and settings)")
            return 0
        args.force = True  # made with other settings: rebuild it
    summary = generate(config, args.out, force=args.force)
    print(format_summary(summary))
    print(f"corpus written to {args.out}")
    return 0
