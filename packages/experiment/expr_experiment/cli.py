"""``expr-experiment``: the experiment that compares the generator's data with real data on the recognizer
(``python -m expr_experiment`` is the same). Each subcommand is its own module
(:mod:`expr_common.subcommands`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from expr_common import subcommands
from expr_common.synth import ondemand

SUBCOMMANDS: subcommands.Registry = {
    "chain": (
        "expr_experiment.chain",
        "the whole demo chain (make demo): corpus -> GAN -> FID -> fidelity -> recognizer arms -> report",
    ),
    "report": (
        "expr_experiment.report_command",
        "write report.md again from a chain folder's finished steps",
    ),
    "fidelity": (
        "expr_experiment.fidelity_command",
        "per-class rate at which a real-data recognizer recognises the synthetic samples",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    ondemand.enable()  # a command line makes a missing data/synthetic_<preset> corpus on first use
    return subcommands.main("expr-experiment", __doc__.splitlines()[0], SUBCOMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
