"""``expr-data prepare``: build (or reuse) the cache of a data config (:mod:`expr_common.data.prepare`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from expr_common.data.config import load_data_config
from expr_common.data.prepare import PrepareError, prepare
from expr_common.runs import add_override_argument
from expr_common.synth.ondemand import ensure_sources


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="data config (configs/data/*.yaml)")
    parser.add_argument(
        "--out", type=Path, default=None, help="cache folder (default: the config's cache.root)"
    )
    add_override_argument(parser, "preprocess.frames=4")
    parser.add_argument(
        "--workers", type=int, default=None, help="decoding processes (default: cache.workers)"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if the cache is up to date")


def run(args: argparse.Namespace) -> int:
    config = load_data_config(args.config, args.overrides)
    try:
        summary = prepare(ensure_sources(config), args.out, workers=args.workers, force=args.force)
    except FileNotFoundError as exc:  # a dataset root that is not there: say so without a traceback
        raise PrepareError(str(exc)) from None
    print(summary.format())
    return 0
