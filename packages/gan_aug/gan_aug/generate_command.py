"""``gan-aug generate``'s command line: faces or clips drawn by a sampling GAN (:mod:`gan_aug.generate`),
or, with ``--mode edit``, real training windows edited by an editing GAN (:mod:`gan_aug.generate_edit`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from expr_common.paths import cli_path
from expr_common.subcommands import positive_int
from gan_aug.generate import GenerateError, SampleRequest, generate
from gan_aug.generate_edit import EditRequest, edit_clips


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--mode", choices=("sample", "edit"), default="sample",
        help="sample: faces from noise; edit: training windows of --source, edited")  # fmt: skip
    add(
        "--from",
        dest="data",
        type=cli_path,
        default=None,
        help="--mode edit: the data config whose windows are edited",
    )
    add("--from-set", dest="data_overrides", action="append", default=[], metavar="KEY=VALUE",
        help="--mode edit: override a key of that data config (repeatable)")  # fmt: skip
    add("--source", default=None, help="--mode edit: the data-config source to edit (default affwild2)")
    add("--source-classes", default=None, metavar="C,...", help="--mode edit: edit only windows of these")
    add("--checkpoint", type=Path, required=True, help="a gan-aug training checkpoint (last.pt / best.pt)")
    add("--out", type=Path, required=True, help="output folder: class folders + manifest.csv")
    add(
        "--domain",
        default=None,
        help="whose style to draw: a domain the GAN was trained on (default: its target, affwild2)",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--per-class", type=positive_int, default=None, metavar="N", help="N samples of every class"
    )
    mode.add_argument(
        "--fill-to-max", action="store_true", help="top every class up to the largest real Aff-Wild2 class"
    )
    mode.add_argument("--counts", default=None, metavar="C=N,...", help='e.g. "Fear=500,Disgust=500"')
    add("--clip-len", type=positive_int, default=1, metavar="K", help="frames per sample (1 = single faces)")
    add("--truncation", type=float, default=None, metavar="T", help="redraw latent entries with |z| > T")
    add("--seed", type=int, default=0)
    add("--batch-size", type=positive_int, default=64, help="images per forward pass")
    add("--device", default=None, help="cuda, cpu (default: cuda if available)")
    add("--overwrite", action="store_true", help="write into an --out that already holds a manifest")


EDIT_ONLY = ("data", "data_overrides", "source", "source_classes")
SAMPLE_ONLY = ("domain", "truncation")


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    return ["--" + {"data": "from", "data_overrides": "from-set"}.get(n, n).replace("_", "-")
            for n in names if getattr(args, n) not in (None, [])]  # fmt: skip


def _common(args: argparse.Namespace) -> dict:
    """The flags both modes share, as :class:`GenerateRequest` fields."""
    return {
        "checkpoint": args.checkpoint, "out_dir": args.out, "per_class": args.per_class,
        "fill_to_max": args.fill_to_max, "counts": args.counts, "clip_len": args.clip_len, "seed": args.seed,
        "batch_size": args.batch_size, "device": args.device, "overwrite": args.overwrite,
    }  # fmt: skip


def run(args: argparse.Namespace) -> int:
    wrong = _given(args, SAMPLE_ONLY if args.mode == "edit" else EDIT_ONLY)
    if wrong:
        raise GenerateError(f"{', '.join(wrong)}: not an option of --mode {args.mode}")
    if args.mode == "edit":
        edit = {"data": args.data, "data_overrides": tuple(args.data_overrides)}
        edit |= {"source": args.source or "affwild2", "source_classes": args.source_classes}
        result = edit_clips(EditRequest(**_common(args), **edit))
        print(f"edited {sum(result.counts.values())} clips into {result.out} (manifest {result.manifest})")
        return 0
    result = generate(SampleRequest(**_common(args), domain=args.domain, truncation=args.truncation))
    total = sum(result.counts.values())
    print(
        f"wrote {total} samples ({', '.join(f'{k} {v}' for k, v in result.counts.items())}) to {result.out}"
    )
    print(f"manifest: {result.manifest}")
    return 0
