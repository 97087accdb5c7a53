"""What a checkpoint's inputs are: the preprocessing keys that shape them, and the check that a data config
given at evaluation or export time has the same ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from expr_common.config import to_dict
from expr_common.data.config import PreprocessConfig
from expr_common.errors import ExprError


class InputsError(ExprError, ValueError):
    """A data config whose inputs differ from those a checkpoint was trained on."""


# What shapes a model's inputs: another value here is another input than the one the weights learnt.
INPUT_KEYS = ("frames", "image_size", "sample_rate", "n_mels", "win_ms", "hop_ms", "window_seconds")


def check_same_inputs(state: dict[str, Any], preprocess: PreprocessConfig, source: str, data: Path) -> None:
    """Refuse a data config whose frames, image size or log-mel differ from those the checkpoint trained
    on (stored in it since the video predictor), naming the keys."""
    stored = state.get("preprocess")
    if not isinstance(stored, dict):
        return
    given = to_dict(preprocess)
    differ = [
        f"{k} {stored[k]} there, {given[k]} here" for k in INPUT_KEYS if k in stored and stored[k] != given[k]
    ]
    if differ:
        raise InputsError(
            f"{data} does not fit {source}: preprocess {'; '.join(differ)}; use the data config it trained on"
        )
