"""``expr-data``: the data command line (``python -m expr_common`` is the same)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from expr_common.config import ConfigError, apply_overrides, from_dict, to_dict
from expr_common.data import check, prepare
from expr_common.runs import add_override_argument
from expr_common.synth.presets import PRESET_NAMES, SynthConfig, preset


def _synth(args: argparse.Namespace) -> int:
    from expr_common.synth.corpus import CORPUS_INFO, format_summary, generate

    config = preset(args.preset, args.seed)
    if args.overrides:
        data = apply_overrides(to_dict(config), args.overrides)
        config = from_dict(data, SynthConfig, f"preset {args.preset} (with --set {' '.join(args.overrides)})")
    if args.workers is not None:
        config.workers = args.workers
    existing = Path(args.out) / CORPUS_INFO
    if args.reuse and existing.is_file():
        summary = json.loads(existing.read_text(encoding="utf-8"))
        if summary.get("config") == to_dict(config):
            print(format_summary(summary))
            print(f"corpus reused from {args.out} (same preset, seed and settings)")
            return 0
        args.force = True  # made with other settings: rebuild it
    summary = generate(config, args.out, force=args.force)
    print(format_summary(summary))
    print(f"corpus written to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="expr-data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    synth = sub.add_parser("synth", help="write the procedural corpus in the AFEW, CK+ and Aff-Wild2 layouts")
    synth.add_argument(
        "--out", type=Path, required=True, help="output folder (gets ckplus/, afew/, affwild2/)"
    )
    synth.add_argument("--preset", choices=PRESET_NAMES, default="demo")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument(
        "--workers", type=int, default=None, help="rendering processes (default: the preset's)"
    )
    synth.add_argument("--force", action="store_true", help="replace --out if it exists")
    synth.add_argument(
        "--reuse", action="store_true", help="keep --out if it holds this very corpus (else rebuild it)"
    )
    add_override_argument(synth, "affwild2.train_videos=20")
    synth.set_defaults(func=_synth)
    check.add_parser(sub)
    prepare.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, FileExistsError, ValueError) as exc:
        print(f"expr-data {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
