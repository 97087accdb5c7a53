"""``expr-data``: the data command line (``python -m expr_common`` is the same)."""

from __future__ import annotations

import sys

from expr_common import subcommands
from expr_common.synth import ondemand

SUBCOMMANDS: subcommands.Registry = {
    "synth": (
        "expr_common.commands.synth",
        "write the procedural corpus in the AFEW, CK+ and Aff-Wild2 layouts",
    ),
    "check": (
        "expr_common.commands.check",
        "read a dataset and report counts per class and split, bad lines and missing files",
    ),
    "prepare": ("expr_common.commands.prepare", "decode datasets into the sample cache that training reads"),
}


def main(argv: list[str] | None = None) -> int:
    ondemand.enable()  # a command line makes a missing data/synthetic_<preset> corpus on first use
    return subcommands.main("expr-data", __doc__.splitlines()[0], SUBCOMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
