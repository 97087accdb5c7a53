"""``expr-data check``: read a dataset and report what a reader finds; exit 0 when clean, 1 otherwise."""

from __future__ import annotations

import argparse
from pathlib import Path

from expr_common.atomic import write_json
from expr_common.data.check import FORMATS, check_dataset, format_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="dataset root (for --format manifest: the CSV or its folder)")
    parser.add_argument("--format", choices=FORMATS, required=True, help="the dataset's on-disk layout")
    parser.add_argument(
        "--deep",
        action="store_true",
        help="decode every video frame and all the sound (default: images whole, media to the first frame)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="FILE", help="also write the report as JSON"
    )


def run(args: argparse.Namespace) -> int:
    report = check_dataset(args.format, args.root, deep=args.deep)
    print(format_report(report))
    if args.json is not None:
        write_json(args.json, report)
    return 0 if report["ok"] else 1
