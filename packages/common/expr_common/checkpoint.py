"""Checkpoint IO: atomic writes, safe loads, and the resolved config carried inside.

A checkpoint is a dict of tensors and plain values. It is written to a temporary file in the same folder
and renamed over the target, so a crash mid-write never leaves a torn ``last.pt``. It is always loaded
with ``weights_only=True``: a checkpoint from an untrusted source cannot run code.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import torch

from expr_common.config import from_dict, to_dict

T = TypeVar("T")
CONFIG_KEY = "config"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, torn, or not loadable safely."""


def save_checkpoint(path: str | Path, state: dict[str, Any], config: Any | None = None) -> Path:
    """Write ``state`` (plus ``config`` as plain data) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(state)
    if config is not None:
        payload[CONFIG_KEY] = to_dict(config)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a clear error names the file when it cannot be."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"checkpoint {path} holds objects that are not plain tensors and values; refusing to load it "
            f"(weights_only=True): {str(exc).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated: {exc}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, expected a dict")
    return state


def config_from_checkpoint(state: dict[str, Any], schema: type[T], source: str = "checkpoint") -> T:
    """Rebuild the typed config stored in a checkpoint (so a model can be rebuilt without the YAML)."""
    if CONFIG_KEY not in state:
        raise CheckpointError(f"{source} carries no config")
    return from_dict(state[CONFIG_KEY], schema, source)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
