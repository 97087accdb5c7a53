"""``expr-data prepare``: build (or reuse) the cache of a data config (:mod:`expr_common.data.prepare`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from expr_common.data.config import load_data_config
from expr_common.data.prepare import PrepareError, prepare
from expr_common.data.prepare_parts import merge
from expr_common.runs import add_override_argument
from expr_common.subcommands import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="data config (configs/data/*.yaml)")
    parser.add_argument(
        "--out", type=Path, default=None, help="cache folder (default: the config's cache.root)"
    )
    add_override_argument(parser, "preprocess.frames=4")
    parser.add_argument(
        "--workers", type=positive_int, default=None, help="decoding processes (default: cache.workers)"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if the cache is up to date")
    shared = parser.add_mutually_exclusive_group()
    shared.add_argument(
        "--shard",
        metavar="I/N",
        default=None,
        help="build only part I of N (0-based) beside the cache, e.g. one task of a SLURM array",
    )
    shared.add_argument("--merge", action="store_true", help="join the N parts of --shard into the cache")


def run(args: argparse.Namespace) -> int:
    config = load_data_config(args.config, args.overrides)
    if args.merge:
        summary = merge(config, args.out)
    else:
        part = _part(args.shard) if args.shard else None
        summary = prepare(config, args.out, workers=args.workers, force=args.force, part=part)
    print(summary.format())
    return 0


def _part(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise PrepareError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if not (n >= 1 and 0 <= i < n):
        raise PrepareError(f"--shard {text}: expected 0 <= I < N")
    return i, n
