"""Output files named on the command line (``--out``, ``--onnx``, ``--probs``): checked before any work.

One rule for every command that writes a single file: the path must not be a folder, must not be one of the
command's own inputs (a checkpoint, a config, a manifest), and must not already exist unless the user asked
to replace it (``--overwrite``). Checked before the work starts, so a refusal costs nothing.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path

from expr_common.errors import ExprError


class OutputError(ExprError, FileExistsError):
    """An output path that would replace something the user did not ask to replace, or is not a file."""


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_file(
    path: str | Path,
    *,
    flag: str,
    overwrite: bool = False,
    inputs: Iterable[str | Path | None] = (),
) -> Path:
    """``path`` as given, once it is known to be writable as asked; :class:`OutputError` otherwise."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputError(f"{flag} {path} is a folder: name the file to write")
    for given in inputs:
        if given is not None and _same_file(path, Path(given).expanduser()):
            raise OutputError(f"{flag} {path} is this command's own input {given}: name another file")
    if path.exists() and not overwrite:
        raise OutputError(f"{flag} {path} exists: name another file or pass --overwrite to replace it")
    if path.parent.exists() and not path.parent.is_dir():
        raise OutputError(f"{flag} {path}: {path.parent} is not a folder")
    return path


def add_overwrite_argument(parser: argparse.ArgumentParser, what: str = "an existing output file") -> None:
    parser.add_argument("--overwrite", action="store_true", help=f"replace {what}")
