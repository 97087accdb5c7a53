"""``gan-aug fid``: FID, per-class FID and KID of generated images against real ones, and ``--floor``, the
same report between two disjoint halves of the real data (:mod:`gan_aug.fid.floor`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from expr_common.atomic import write_text
from expr_common.logs import get_logger
from expr_common.outputs import add_overwrite_argument, check_output_file
from expr_common.paths import repo_root
from expr_common.subcommands import positive_int
from gan_aug.fid.features import FeatureExtractor
from gan_aug.fid.floor import FLOOR_UNITS, floor_report
from gan_aug.fid.metrics import KID_SUBSET_SIZE, KID_SUBSETS, FidError
from gan_aug.fid.report import MIN_FID_N, FidOptions, report_with_features
from gan_aug.fid.sources import open_source

log = get_logger("gan_aug.fid")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--real", required=True, help="manifest CSV (or its folder), prepared cache, or image folder")
    add("--fake", default=None, help="same kinds as --real (gan-aug generate writes a manifest)")
    add(
        "--floor",
        action="store_true",
        help="add the real-vs-real floor: the same report between two disjoint halves of --real",
    )
    add(
        "--floor-by",
        choices=FLOOR_UNITS,
        default="auto",
        help="what stays whole on one side of the floor split (auto: subject, else video, else image)",
    )
    add("--real-split", default=None, help="only this split of a --real manifest/cache")
    add("--real-domain", default=None, help="only this domain of a --real manifest/cache (e.g. affwild2)")
    add("--per-class", action="store_true", help="intra-FID: each class against its real images")
    add("--kid", action="store_true", help=f"KID over {KID_SUBSETS} subsets of min({KID_SUBSET_SIZE}, N)")
    add("--n", type=int, default=None, help="images per side (default: the smaller source)")
    add("--allow-small-n", action="store_true", help=f"compute FID with N < {MIN_FID_N} (biased; warned)")
    add("--out", type=Path, default=None, help="write the JSON report here (always printed)")
    add_overwrite_argument(parser, "an existing --out report")
    add("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if available)")
    add("--batch-size", type=positive_int, default=50)
    add(
        "--weights",
        type=Path,
        default=None,
        help="weights file (default: where `gan-aug fid-weights` puts it)",
    )
    add("--cache-dir", type=Path, default=None, help="real-feature cache (default runs/fid_cache)")
    add("--no-cache", action="store_true", help="do not read or write the real-feature cache")
    add("--seed", type=int, default=0, help="subsampling and KID subsets")
    add(
        "--frechet",
        choices=("eigen", "pytorch-fid"),
        default="eigen",
        help="Fréchet computation (same value)",
    )


def run(args: argparse.Namespace) -> int:
    if args.fake is None and not args.floor:
        raise FidError("give --fake (the images to score), --floor (the real-vs-real floor), or both")
    if args.out is not None:  # before the feature extraction, not after it
        check_output_file(args.out, flag="--out", overwrite=args.overwrite, inputs=(args.real, args.fake))
    real = open_source(args.real, args.real_split, args.real_domain)
    cache_dir = None if args.no_cache else (args.cache_dir or repo_root() / "runs" / "fid_cache")
    options = FidOptions(
        n=args.n, per_class=args.per_class, kid=args.kid, allow_small_n=args.allow_small_n,
        cache_dir=cache_dir, seed=args.seed, frechet=args.frechet,
    )  # fmt: skip
    extractor = FeatureExtractor(args.weights, args.device, args.batch_size)  # loaded once
    report: dict[str, Any] = {}
    fake_features = None
    if args.fake is not None:
        report, _, fake_features = report_with_features(real, args.fake, options, extractor=extractor)
    if args.floor:
        floor = {"by": args.floor_by, "fake_features": fake_features, "extractor": extractor}
        report |= floor_report(real, options, **floor)
    for section, body in [("", report), *((f"{k}: ", report.get(k, {})) for k in ("floor", "vs_floor"))]:
        for warning in body.get("warnings", []):
            log.warning(section + warning)
    text = json.dumps(report, indent=2)
    if args.out is not None:
        write_text(args.out, text + "\n")
    print(text)
    return 0
