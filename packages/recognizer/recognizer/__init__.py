"""The audio-visual expression recognizer (MCNN + RHCNN + GCSA + proportional fusion).

The library API (recognizer/api.py), imported on first use so ``import recognizer`` stays light:
``load_recognizer(path) -> Recognizer`` with ``.predict(video=, audio=)`` and ``.predict_video(path)``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["FramePredictions", "Recognizer", "load_recognizer"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from recognizer import api

        return getattr(api, name)
    raise AttributeError(f"module 'recognizer' has no attribute {name!r}")
