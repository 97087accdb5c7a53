"""Logging and progress bars: one format for every command, tqdm on anything that takes more than seconds."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
PROGRESS_ENV = "EXPR_PROGRESS"  # set to 0 to silence progress bars (tests, batch jobs)
_configured = False


def get_logger(name: str) -> logging.Logger:
    """A logger under the ``expr`` format; the root handler is installed once."""
    global _configured
    if not _configured:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        root = logging.getLogger("expr")
        root.addHandler(handler)
        root.setLevel(os.environ.get("EXPR_LOG_LEVEL", "INFO"))
        root.propagate = False
        _configured = True
    return logging.getLogger(f"expr.{name}")


def progress_enabled() -> bool:
    return os.environ.get(PROGRESS_ENV, "1") not in ("0", "false", "no")


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
) -> tqdm:
    """A tqdm bar; hidden on non-main processes (``enabled=False``) and when ``EXPR_PROGRESS=0``."""
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=not (enabled and progress_enabled()),
        mininterval=0.5,
        dynamic_ncols=True,
        leave=True,
    )
