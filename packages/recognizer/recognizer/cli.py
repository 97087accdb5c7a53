"""``recognizer``: train, evaluate, predict, validate-submission, ablate (``python -m recognizer`` is the
same; so is ``accelerate launch -m recognizer train ...``). Each subcommand is its own module
(:mod:`expr_common.subcommands`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from expr_common import subcommands
from expr_common.synth import ondemand

SUBCOMMANDS: subcommands.Registry = {
    "train": ("recognizer.train", "train the audio-visual recognizer"),
    "evaluate": ("recognizer.evaluate", "per-frame macro-F1 of a checkpoint on a split"),
    "predict": ("recognizer.predict", "ABAW submission file: a label for every frame of a split"),
    "validate-submission": ("recognizer.submission", "check an ABAW submission file"),
    "ablate": ("recognizer.ablate", "the paper's Table 1 ablation over seeds"),
    "export": ("recognizer.export", "the fused model as ONNX (onnxruntime runs it)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    ondemand.enable()  # a command line makes a missing data/synthetic_<preset> corpus on first use
    return subcommands.main("recognizer", __doc__.splitlines()[0], SUBCOMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
