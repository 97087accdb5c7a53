"""Checkpoint IO: atomic writes, safe loads, a kept previous ``last.pt``, the resolved config carried inside.

A checkpoint is a dict of tensors and plain values. It is written to a temporary file in the same folder
(``.<name>.<random>.tmp``), fsynced, and renamed over the target, so a crash mid-write never leaves a torn
``last.pt``; what a kill mid-write does leave is that temporary file, which :func:`load_resume_checkpoint`
reports and removes. Saving ``last.pt`` also keeps the checkpoint it replaces as ``last.prev.pt`` (a hard
link, so no copy): when ``last.pt`` is unreadable anyway (copied by hand, a filesystem without atomic
rename, a power cut before the data reached the disk), ``--resume`` falls back to that one and says so.
Checkpoints are always loaded with ``weights_only=True``: a checkpoint from an untrusted source cannot run
code.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import shutil
from pathlib import Path
from typing import Any, TypeVar

import torch

from expr_common.atomic import atomic_write, fsync_dir, temp_path
from expr_common.config import from_dict, to_dict
from expr_common.errors import ExprError
from expr_common.logs import get_logger

T = TypeVar("T")
CONFIG_KEY = "config"
RESUME_CHECKPOINT = "last.pt"  # runs.LAST_CHECKPOINT: the one file --resume reads, and so the one kept twice
PREVIOUS_TAG = ".prev"  # last.pt -> last.prev.pt
# What atomic.temp_path makes (".<name>.<random>.tmp"): only a write that never finished leaves one.
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]+\.tmp$")
# torch.save writes a zip; older torch and plain pickle.dump write a pickle stream (protocol >= 2 opens with
# 0x80). A file that starts with neither is damage, not a payload.
_SERIALIZED_STARTS = (b"PK\x03\x04", b"\x80")

log = get_logger("checkpoint")


class CheckpointError(ExprError, RuntimeError):
    """A checkpoint file is missing, torn, or not loadable safely."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint holds pickled objects beyond tensors and plain values: refused, never fallen back from
    (a kill cannot produce one; someone has to look at it)."""


def previous_path(path: str | Path) -> Path:
    """Where the checkpoint that ``path`` replaced is kept: ``last.pt`` -> ``last.prev.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}{PREVIOUS_TAG}{path.suffix}")


def save_checkpoint(
    path: str | Path, state: dict[str, Any], config: Any | None = None, *, keep_previous: bool | None = None
) -> Path:
    """Write ``state`` (plus ``config`` as plain data) to ``path`` atomically.

    ``keep_previous`` (default: only for ``last.pt``, the file ``--resume`` reads) first keeps the file
    being replaced as :func:`previous_path`. Every step is a rename, so ``path`` exists and is whole at
    every instant: temp written and fsynced -> old ``path`` hard-linked to ``.prev`` (via a temp name) ->
    temp renamed over ``path``.
    """
    path = Path(path)
    if keep_previous is None:
        keep_previous = path.name == RESUME_CHECKPOINT
    payload = dict(state)
    if config is not None:
        payload[CONFIG_KEY] = to_dict(config)

    def keep() -> None:
        if keep_previous and path.is_file():
            _keep_copy(path, previous_path(path), link=True)

    # Serialised in memory first, then written: torch's zip writer reports a full disk as a RuntimeError
    # ("enforce fail at inline_container.cc"), a plain write as the OSError (ENOSPC) that names the file.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_write(path, "wb", before_replace=keep) as handle:
        handle.write(buffer.getbuffer())
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a clear error names the file when it cannot be."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if not _starts_like_serialized_data(path):
            raise CheckpointError(
                f"checkpoint {path} is corrupt: not a torch.save file ({_reason(exc)})"
            ) from None
        raise UnsafeCheckpointError(
            f"checkpoint {path} holds objects that are not plain tensors and values; refusing to load it "
            f"(weights_only=True): {_reason(exc)}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated: {_reason(exc)}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, expected a dict")
    return state


def incomplete_writes(folder: str | Path) -> list[Path]:
    """Temporary files that :func:`save_checkpoint` left in ``folder`` when it was killed mid-write."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _TEMP_NAME.match(p.name) and p.is_file())


def load_resume_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", *, tidy: bool = True
) -> tuple[dict[str, Any], Path]:
    """Load ``last.pt`` for ``--resume``; returns the state and the file it really came from.

    - Temporary files of killed writes are never read: each is logged (a warning naming it) and, with
      ``tidy``, removed.
    - When ``path`` is unreadable (truncated, empty, not a checkpoint), the previous checkpoint
      (:func:`previous_path`) is used instead, with a warning naming both files and what was wrong; with
      ``tidy`` the unreadable file is replaced by a copy of it, so the next save keeps a good previous one.
    - With no usable previous checkpoint, :class:`CheckpointError` names the file(s) and the problem.
    - A file with pickled code is refused (:class:`UnsafeCheckpointError`), not fallen back from.

    ``tidy`` must be False on all but one process of a multi-process run: only the main process writes.
    """
    path = Path(path)
    for stale in incomplete_writes(path.parent):
        action = "removing it" if tidy else "leaving it to the main process"
        log.warning(
            "ignoring an incomplete checkpoint write %s (a run was killed while saving it); %s", stale, action
        )
        if tidy:
            stale.unlink(missing_ok=True)
    try:
        return load_checkpoint(path, map_location), path
    except UnsafeCheckpointError:
        raise
    except CheckpointError as exc:
        problem = str(exc)
    previous = previous_path(path)
    if not previous.is_file():
        raise CheckpointError(f"{problem}; there is no previous checkpoint {previous} to resume from instead")
    try:
        state = load_checkpoint(previous, map_location)
    except CheckpointError as exc:
        raise CheckpointError(f"{problem}; the previous checkpoint is unusable too: {exc}") from None
    where = f"step {state['step']}" if "step" in state else "an earlier point"
    if "epoch" in state:
        where = f"epoch {state['epoch']}, {where}"
    log.warning("%s; resuming from the previous checkpoint %s instead (%s)", problem, previous, where)
    if tidy:
        _keep_copy(previous, path, link=False)  # not a link: writing into last.pt must not change .prev
        fsync_dir(path.parent)
        log.warning("replaced the unreadable %s by a copy of %s", path, previous)
    return state, previous


def config_from_checkpoint(state: dict[str, Any], schema: type[T], source: str = "checkpoint") -> T:
    """Rebuild the typed config stored in a checkpoint (so a model can be rebuilt without the YAML)."""
    if CONFIG_KEY not in state:
        raise CheckpointError(f"{source} carries no config")
    return from_dict(state[CONFIG_KEY], schema, source)


def _keep_copy(source: Path, target: Path, *, link: bool) -> None:
    """Make ``target`` a whole copy of ``source`` atomically (a temp name, then a rename over ``target``)."""
    tmp_name = temp_path(target)
    try:
        linked = False
        if link:
            try:
                os.unlink(tmp_name)
                os.link(source, tmp_name)
                linked = True
            except OSError:  # no hard links here (some network and FAT filesystems): copy instead
                pass
        if not linked:
            shutil.copyfile(source, tmp_name)
            with open(tmp_name, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _starts_like_serialized_data(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(4)
    return head.startswith(_SERIALIZED_STARTS)


def _reason(exc: BaseException) -> str:
    """The informative line of a torch.load error (its first lines are a generic banner)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.endswith("WeightsUnpickler error:") and i + 1 < len(lines):
            return lines[i + 1]
    # e.g. "PytorchStreamReader failed reading zip archive: failed finding central directory. This is..."
    return lines[0].split(". ")[0] if lines else type(exc).__name__


def config_changes(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain configs, as ``key: saved -> current``."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(saved) | set(current), key=str):
            sub = f"{prefix}.{key}" if prefix else str(key)
            out += config_changes(saved.get(key, "<absent>"), current.get(key, "<absent>"), sub)
        return out
    return [] if saved == current else [f"{prefix}: {saved!r} -> {current!r}"]


def check_fits(
    path: str | Path,
    state: dict[str, Any],
    modules: dict[str, dict[str, torch.Tensor]],
    current_config: Any,
) -> None:
    """Refuse a checkpoint whose tensors do not fit the models this config builds (``modules``: a name of
    ``state`` -> the model's own ``state_dict()``): a :class:`CheckpointError` that says how many tensors
    differ and which config keys differ from the checkpoint's, raised before anything is loaded."""
    problems = []
    for name, own in modules.items():
        saved = state.get(name)
        if not isinstance(saved, dict):
            problems.append(f"no {name!r} weights")
            continue
        missing = [k for k in own if k not in saved]
        extra = [k for k in saved if k not in own]
        shapes = [
            f"{name}.{k} {tuple(saved[k].shape)} -> {tuple(v.shape)}"
            for k, v in own.items()
            if k in saved and isinstance(saved[k], torch.Tensor) and tuple(saved[k].shape) != tuple(v.shape)
        ]
        problems += shapes
        if missing or extra:
            problems.append(f"{name}: {len(missing)} tensors missing, {len(extra)} unexpected")
    if not problems:
        return
    changes = config_changes(state[CONFIG_KEY], to_dict(current_config)) if CONFIG_KEY in state else []
    shown = "; ".join(problems[:3]) + (f"; {len(problems) - 3} more" if len(problems) > 3 else "")
    said = "; ".join(changes[:6]) + (f"; {len(changes) - 6} more" if len(changes) > 6 else "")
    raise CheckpointError(
        f"{path} does not fit this config ({shown}); config keys that differ from the checkpoint's: "
        f"{said or 'none (the code changed?)'}. Resume with the checkpoint's own config, or start a new run"
    )
